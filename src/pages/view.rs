//! What every page handler starts from (`Page`: language, CSRF token, session
//! cookie, all read from the request) and ends with (`Page::render`, or a
//! redirect that signs the browser in).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::{context, Environment, Value};

use super::csrf;
use super::{cookies, lang};
use crate::accounts::Session;
use crate::client_ip::ClientIp;
use crate::config::BrowserSettings;
use crate::domain::{Lang, ReturnTo};
use crate::state::AppState;

const LANG_COOKIE_SECS: i64 = 365 * 24 * 3600;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/pages/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "base.html",
    "macros.html",
    "flow.html",
    "login.html",
    "account.html",
    "message.html",
];

const STRINGS: &str = include_str!("../../templates/pages/i18n.json");

/// Built once per router: the page templates and the UI strings of both
/// languages. (The CSRF key is in the state, derived at start.)
pub struct Pages {
    env: Environment<'static>,
    strings: BTreeMap<String, BTreeMap<String, String>>,
}

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("built-in page template {name}: {e}"));
        }
        let strings = serde_json::from_str(STRINGS).expect("templates/pages/i18n.json is valid");
        Self { env, strings }
    }

    fn text<'a>(&'a self, lang: Lang, key: &'a str) -> &'a str {
        self.strings
            .get(lang.as_str())
            .and_then(|t| t.get(key))
            .map_or(key, String::as_str)
    }
}

/// One page request as the handlers see it.
pub struct Page {
    pub state: AppState,
    pages: Arc<Pages>,
    pub lang: Lang,
    remember_lang: bool,
    /// `?lang=` named a language: redirects pass it on.
    explicit_lang: bool,
    /// The browser's CSRF id from its cookie; `None` when it had none (a new one is issued).
    browser_id: Option<String>,
    issued_browser_id: Option<String>,
    csrf_token: String,
    /// A post that did not come from the pages themselves (see `csrf::same_origin_post`).
    foreign: bool,
    /// `PUBLIC_URL` is https: cookies are Secure and `__Host-` prefixed.
    secure: bool,
    pub session: Option<String>,
    lang_href: String,
    client: ClientIp,
    /// `?return_to=`, when it names an allowed place: where signing in ends,
    /// carried by every link and form between the sign-in pages.
    return_to: Option<ReturnTo>,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let pages = parts
            .extensions
            .get::<Arc<Pages>>()
            .cloned()
            .expect("the pages router adds its Pages extension");
        let headers = &parts.headers;
        let query = parts.uri.query();
        let secure = state.settings.public_url.starts_with("https://");
        let cookie = |base| cookies::get(headers, &cookies::name(base, secure));
        let query_lang = lang::query_param(query, "lang");
        let choice = lang::choose(
            query_lang,
            cookie(lang::COOKIE),
            header_str(headers, header::ACCEPT_LANGUAGE),
            state.settings.mail_lang,
        );
        let browser_id = cookie(csrf::COOKIE)
            .filter(|id| csrf::is_browser_id(id))
            .map(str::to_string);
        let id = browser_id.clone().unwrap_or_else(csrf::new_browser_id);
        let issued_browser_id = browser_id.is_none().then(|| id.clone());
        let csrf_token = state.csrf.token(&id);
        Ok(Page {
            state: state.clone(),
            lang: choice.lang,
            remember_lang: choice.remember,
            explicit_lang: query_lang.and_then(Lang::parse) == Some(choice.lang),
            browser_id,
            issued_browser_id,
            csrf_token,
            foreign: !csrf::same_origin_post(
                header_str(headers, "sec-fetch-site"),
                header_str(headers, header::ORIGIN),
                &state.settings.public_url,
            ),
            secure,
            session: cookie(cookies::SESSION).map(str::to_string),
            lang_href: lang_href(parts.uri.path(), query, other(choice.lang)),
            client: ClientIp::of(parts, state),
            return_to: return_to(query, &state.settings.browsers),
            pages,
        })
    }
}

/// The first `return_to` of the query, decoded, if it is a place to return to.
fn return_to(query: Option<&str>, browsers: &BrowserSettings) -> Option<ReturnTo> {
    let (_, raw) =
        url::form_urlencoded::parse(query?.as_bytes()).find(|(k, _)| k == "return_to")?;
    browsers.return_to(&raw)
}

fn header_str<K: header::AsHeaderName>(headers: &HeaderMap, name: K) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn other(lang: Lang) -> Lang {
    match lang {
        Lang::ZhCn => Lang::En,
        Lang::En => Lang::ZhCn,
    }
}

/// The same page in the other language: the query kept, `lang` replaced.
fn lang_href(path: &str, query: Option<&str>, lang: Lang) -> String {
    let mut parts: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    let lang = format!("lang={lang}");
    parts.push(&lang);
    format!("{path}?{}", parts.join("&"))
}

impl Page {
    pub fn t(&self, key: &str) -> String {
        self.pages.text(self.lang, key).to_string()
    }

    /// The form's token matches this browser's cookie, and the post did not
    /// come from another site.
    pub fn csrf_ok(&self, submitted: &str) -> bool {
        !self.foreign
            && self
                .state
                .csrf
                .verify(self.browser_id.as_deref(), submitted)
    }

    /// The client, as the API resolves it (`TRUSTED_PROXIES`).
    pub fn client(&self) -> ClientIp {
        self.client
    }

    /// The per-IP limit key of the client, as the API computes it.
    pub fn ip_key(&self) -> String {
        self.client.key()
    }

    fn secure(&self) -> bool {
        self.secure
    }

    fn cookie_name<'a>(&self, base: &'a str) -> std::borrow::Cow<'a, str> {
        cookies::name(base, self.secure)
    }

    /// After a refused post: a new browser id and token, so the form that
    /// comes back works, and an id someone planted is not used again.
    pub fn renew_csrf(&mut self) {
        let id = csrf::new_browser_id();
        self.csrf_token = self.state.csrf.token(&id);
        self.browser_id = Some(id.clone());
        self.issued_browser_id = Some(id);
    }

    /// `path` with this request's `?lang=` passed on, so a redirect keeps
    /// the language even when the browser keeps no cookie.
    pub fn keep_lang(&self, path: &str) -> String {
        if !self.explicit_lang {
            return path.to_string();
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{path}{sep}lang={}", self.lang)
    }

    /// `path` with this request's `return_to` passed on, so it survives
    /// every step between the sign-in pages.
    pub fn carry(&self, path: &str) -> String {
        let Some(to) = &self.return_to else {
            return path.to_string();
        };
        let sep = if path.contains('?') { '&' } else { '?' };
        let value: String = url::form_urlencoded::byte_serialize(to.as_str().as_bytes()).collect();
        format!("{path}{sep}return_to={value}")
    }

    /// Where a signed-in browser goes: `return_to`, else its account.
    pub fn after_sign_in(&self) -> &str {
        self.return_to.as_ref().map_or("/account", ReturnTo::as_str)
    }

    /// Renders `template` with the parts every page shares, and sets the
    /// language and CSRF cookies when this request chose or needed them.
    pub fn render(
        &self,
        template: &str,
        title: &str,
        extra: Value,
        status: StatusCode,
    ) -> Response {
        let lang = self.lang.as_str();
        let t = self.pages.strings.get(lang).map(Value::from_serialize);
        let ctx = context! {
            lang,
            other_lang => other(self.lang).as_str(),
            lang_href => self.lang_href,
            t,
            title,
            csrf => self.csrf_token,
            dev_mailbox => self.state.settings.dev_mailbox(),
            version => env!("CARGO_PKG_VERSION"),
            ..extra
        };
        let body = match self
            .pages
            .env
            .get_template(template)
            .and_then(|tpl| tpl.render(ctx))
        {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, template, "page template failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, self.t("err_internal")).into_response();
            }
        };
        let mut response = (status, Html(body)).into_response();
        self.add_cookies(&mut response);
        if let Some(to) = &self.return_to {
            let csp = super::csp_forms_to(&to.origin());
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        response
    }

    fn add_cookies(&self, response: &mut Response) {
        let headers = response.headers_mut();
        if self.remember_lang {
            let v = cookies::set(
                &self.cookie_name(lang::COOKIE),
                self.lang.as_str(),
                Some(LANG_COOKIE_SECS),
                self.secure(),
            );
            headers.append(header::SET_COOKIE, v);
        }
        if let Some(id) = &self.issued_browser_id {
            headers.append(
                header::SET_COOKIE,
                cookies::set(&self.cookie_name(csrf::COOKIE), id, None, self.secure()),
            );
        }
    }

    /// 303 to `to` (a GET after the POST), keeping this request's cookies.
    pub fn redirect(&self, to: &str) -> Response {
        let mut response = Redirect::to(to).into_response();
        self.add_cookies(&mut response);
        response
    }

    /// The browser is signed in with the same token the API issues.
    pub fn signed_in(&self, session: &Session) -> Response {
        let mut response = self.redirect(self.after_sign_in());
        let ttl = self.state.settings.session_ttl_secs;
        let name = self.cookie_name(cookies::SESSION);
        let cookie = cookies::set(&name, &session.token, Some(ttl), self.secure());
        response.headers_mut().append(header::SET_COOKIE, cookie);
        response
    }

    pub fn signed_out(&self, to: &str) -> Response {
        let mut response = self.redirect(to);
        let cookie = cookies::clear(&self.cookie_name(cookies::SESSION), self.secure());
        response.headers_mut().append(header::SET_COOKIE, cookie);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_strings() {
        let pages = Pages::new();
        let keys = |lang: &str| pages.strings[lang].keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys("en"), keys("zh-CN"));
        assert!(keys("en").len() > 30);
    }

    #[test]
    fn lang_href_replaces_only_lang() {
        assert_eq!(
            lang_href("/login", Some("mode=code&lang=zh-CN"), Lang::En),
            "/login?mode=code&lang=en"
        );
        assert_eq!(
            lang_href("/register", None, Lang::ZhCn),
            "/register?lang=zh-CN"
        );
    }
}
