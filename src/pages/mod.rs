//! The web pages: `/register`, `/login`, `/forgot-password`, `/account`,
//! server-rendered in zh-CN or en, working without JavaScript. They call the
//! same `codes` and `accounts` as the JSON API, and the session cookie holds
//! the same token the API issues.

mod account;
mod assets;
mod challenge;
pub(crate) mod cookies;
pub(crate) mod csrf;
mod errors;
mod flows;
mod lang;
mod login;
mod posted;
mod view;

use std::sync::Arc;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Extension;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use crate::domain::{Lang, Origin};
use crate::routes::Routes;
use view::Pages;

/// No inline script or style anywhere: only the files under /static. The
/// challenge's worker is one of them (`worker-src`); its picture comes inline
/// as a `data:` PNG (`img-src`).
const CSP: &str = "default-src 'none'; script-src 'self'; worker-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The policy of a page whose forms end at `return_to`: browsers hold a
/// form's redirect to `form-action` too, so that origin joins `'self'` there.
pub(crate) fn csp_forms_to(origin: &Origin) -> HeaderValue {
    let policy = CSP.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    );
    HeaderValue::from_str(&policy).expect("an origin is a plain ASCII source")
}

pub fn router() -> Routes {
    Routes::new()
        .route("/", get(root))
        .route(
            "/register",
            get(flows::register_page).post(flows::register_submit),
        )
        .route(
            "/forgot-password",
            get(flows::forgot_page).post(flows::forgot_submit),
        )
        .route("/login", get(login::page).post(login::submit))
        .route("/account", get(account::page))
        .route("/logout", post(account::logout))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        .route("/static/pow.js", get(assets::worker))
        .route("/static/favicon.svg", get(assets::icon))
        .map(|r| {
            r.layer(middleware::from_fn(security_headers))
                .layer(Extension(Arc::new(Pages::new())))
        })
}

#[derive(OpenApi)]
#[openapi(paths(
    root,
    flows::register_page,
    flows::register_submit,
    flows::forgot_page,
    flows::forgot_submit,
    login::page,
    login::submit,
    account::page,
    account::logout,
    assets::css,
    assets::js,
    assets::worker,
    assets::icon,
))]
pub struct PagesApi;

/// The page language: `?lang=`, then the cookie a page set, then
/// `Accept-Language`, then `MAIL_LANG`. A `?lang=` is remembered in a cookie.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LangQuery {
    /// The page's language; remembered in a cookie.
    #[param(value_type = Lang, required = false)]
    #[allow(dead_code)] // read by `lang::choose` from the raw query; here to be described
    lang: Option<String>,
}

/// Where a sign-in page sends the browser once it is signed in. Carried by
/// every link and form between the sign-in pages (and by the language switch).
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReturnToQuery {
    /// An absolute `http`/`https` URL on `PUBLIC_URL`'s origin or one listed in
    /// `RETURN_TO_ORIGINS`, without `user@`. Anything else is ignored: the
    /// browser goes to `/account`.
    #[param(required = false, example = "https://app.example.com/welcome")]
    #[allow(dead_code)] // read by `Page` from the raw query; here to be described
    return_to: Option<String>,
}

/// What a form post may answer besides its own outcomes: each re-renders the
/// form with the error by its field, with the status the API would use.
pub(crate) const FORM_ERRORS: &str = "The form again, the error shown by its field.";
pub(crate) const FORM_ERRORS_OR_BAD_FORM: &str = "The form again, the error shown by its field; or, when the form could not be read (a field given twice), a page that says so.";
pub(crate) const FORM_REFUSED: &str = "The form again with a fresh CSRF token: the token was missing or wrong, or the post came from another origin (`Sec-Fetch-Site` other than `same-origin`/`none`, or an `Origin` that is not `PUBLIC_URL`'s).";
pub(crate) const NOT_A_FORM: &str =
    "A page that says so: the body was not sent as `application/x-www-form-urlencoded`.";
pub(crate) const BAD_FORM: &str =
    "A page that says so: the form could not be read (a field given twice).";

/// The root
///
/// Redirects to `/account` (and from there to `/login` without a session).
#[utoipa::path(get, path = "/", tag = "pages",
    responses((status = 303, description = "To `/account`.", headers(("Location" = String)))))]
async fn root() -> Redirect {
    Redirect::to("/account")
}

pub(crate) async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    // A page may have widened `form-action` (`csp_forms_to`); nothing else.
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // No referrer to other sites. Not `no-referrer`: under it browsers send
    // `Origin: null` with every form post, and a post must show our origin.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Pages hold CSRF tokens and addresses: never from a cache.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
