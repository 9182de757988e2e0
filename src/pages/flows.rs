//! The code flows: register, forgot password, sign in with a code. Step 1
//! asks for the address and sends a code; step 2 takes the code (and, where
//! the flow sets one, a password) and signs the browser in.

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};
use serde::Deserialize;
use utoipa::ToSchema;

use super::errors::{Errors, Field};
use super::posted::Posted;
use super::view::Page;
use super::{
    LangQuery, ReturnToQuery, FORM_ERRORS, FORM_ERRORS_OR_BAD_FORM, FORM_REFUSED, NOT_A_FORM,
};
use crate::accounts::Session;
use crate::codes::SendRequest;
use crate::domain::{EmailAddress, Password, Purpose};
use crate::error::ApiError;

/// What sets one code flow apart from the others.
#[derive(Clone, Copy)]
pub struct Flow {
    path: &'static str,
    purpose: Purpose,
    /// The `mode` the form posts back (the login page hosts two forms).
    mode: &'static str,
    title: &'static str,
    intro: &'static str,
    submit: &'static str,
    /// The string key of the password field's label, if the flow sets a password.
    password: Option<&'static str>,
    sent: &'static str,
}

pub const REGISTER: Flow = Flow {
    path: "/register",
    purpose: Purpose::Register,
    mode: "",
    title: "register_title",
    intro: "register_intro",
    submit: "register_submit",
    password: Some("password"),
    sent: "code_sent_register",
};

pub const FORGOT: Flow = Flow {
    path: "/forgot-password",
    purpose: Purpose::ResetPassword,
    mode: "",
    title: "forgot_title",
    intro: "forgot_intro",
    submit: "reset_submit",
    password: Some("new_password"),
    // The page must not say whether the address has an account.
    sent: "code_sent_account",
};

pub const LOGIN_CODE: Flow = Flow {
    path: "/login",
    purpose: Purpose::Login,
    mode: "code",
    title: "login_title",
    intro: "login_code_intro",
    submit: "login_submit",
    password: None,
    sent: "code_sent_account",
};

/// Every field any page form posts; absent ones are empty.
#[derive(Deserialize, Default, ToSchema)]
#[serde(default)]
pub struct PageForm {
    /// The token in the page's form, bound to the browser's CSRF cookie.
    pub csrf: String,
    /// `code` on `/login` for a sign-in by code; empty otherwise.
    pub mode: String,
    /// `send` asks for a code (step 1, or "send again"); anything else
    /// finishes the flow with `code` (and `password`).
    pub action: String,
    pub email: String,
    pub code: String,
    /// The password (`/login`), the new account's (`/register`) or the new
    /// one (`/forgot-password`).
    pub password: String,
    /// When step 2's code was sent (unix seconds), so a re-rendered step 2
    /// keeps counting down from where it was. Only ever affects the countdown.
    pub sent_at: String,
    /// The challenge a send answers (`GET /api/auth/challenge`), with the
    /// nonce the page's worker found or the digits typed from the picture.
    pub challenge_id: String,
    pub challenge_nonce: String,
    pub challenge_answer: String,
}

/// The state of a flow page between requests.
#[derive(Default)]
struct View {
    sent: bool,
    email: String,
    sent_at: i64,
    /// Seconds the "send code" button stays disabled.
    wait: i64,
    notice: Option<String>,
    errors: Errors,
    /// A send was answered 428: the form shows a picture.
    challenged: bool,
}

/// Register: the form
#[utoipa::path(get, path = "/register", tag = "pages", params(LangQuery, ReturnToQuery),
    responses((status = 200, description = "Step 1: the address.", content_type = "text/html", body = String)))]
pub async fn register_page(page: Page) -> Response {
    render(&page, REGISTER, View::default(), StatusCode::OK).await
}

/// Register: send a code, or create the account
///
/// `action=send` mails a code (step 2 follows: the code and a password);
/// otherwise the account is made and the browser signed in.
#[utoipa::path(post, path = "/register", tag = "pages", params(LangQuery, ReturnToQuery),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Step 2: the code was sent; the code and a password.", content_type = "text/html", body = String),
        (status = 303, description = "Signed in, with the session cookie: to `return_to` when it is allowed, else `/account`.", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = FORM_ERRORS_OR_BAD_FORM, content_type = "text/html", body = String),
        (status = 403, description = FORM_REFUSED, content_type = "text/html", body = String),
        (status = 409, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 415, description = NOT_A_FORM, content_type = "text/html", body = String),
        (status = 429, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 500, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 503, description = FORM_ERRORS, content_type = "text/html", body = String),
    ))]
pub async fn register_submit(Posted { page, form }: Posted) -> Response {
    submit(page, REGISTER, form).await
}

/// Forgot password: the form
#[utoipa::path(get, path = "/forgot-password", tag = "pages", params(LangQuery, ReturnToQuery),
    responses((status = 200, description = "Step 1: the address.", content_type = "text/html", body = String)))]
pub async fn forgot_page(page: Page) -> Response {
    render(&page, FORGOT, View::default(), StatusCode::OK).await
}

/// Forgot password: send a code, or set the new password
///
/// `action=send` mails a code (the page never says whether the address has an
/// account); otherwise the password is reset, every older session ends, and
/// this browser is signed in with a new one.
#[utoipa::path(post, path = "/forgot-password", tag = "pages", params(LangQuery, ReturnToQuery),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Step 2: the code was sent; the code and a new password.", content_type = "text/html", body = String),
        (status = 303, description = "Reset and signed in, with the session cookie: to `return_to` when it is allowed, else `/account`.", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = FORM_ERRORS_OR_BAD_FORM, content_type = "text/html", body = String),
        (status = 403, description = FORM_REFUSED, content_type = "text/html", body = String),
        (status = 415, description = NOT_A_FORM, content_type = "text/html", body = String),
        (status = 429, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 500, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 503, description = FORM_ERRORS, content_type = "text/html", body = String),
    ))]
pub async fn forgot_submit(Posted { page, form }: Posted) -> Response {
    submit(page, FORGOT, form).await
}

pub async fn login_code_page(page: &Page) -> Response {
    render(page, LOGIN_CODE, View::default(), StatusCode::OK).await
}

pub async fn submit(mut page: Page, flow: Flow, form: PageForm) -> Response {
    if !page.csrf_ok(&form.csrf) {
        page.renew_csrf();
        // A fresh token comes with the re-rendered page: trying again works.
        let view = View {
            email: form.email,
            errors: Errors::at(Field::Form, page.t("err_csrf")),
            ..View::default()
        };
        return render(&page, flow, view, StatusCode::FORBIDDEN).await;
    }
    match form.action.as_str() {
        "send" => send(&page, flow, form).await,
        _ => finish(&page, flow, form).await,
    }
}

/// As the API's `send-code`: the address, then the challenge, then the code.
async fn ask_for_code(page: &Page, flow: Flow, form: &PageForm) -> Result<EmailAddress, ApiError> {
    let email = EmailAddress::parse(form.email.trim())?;
    let solved = page.redeem(form).await?;
    let req = SendRequest {
        email: &email,
        purpose: flow.purpose,
        lang: page.lang,
        client: page.client(),
        solved,
    };
    page.state.codes.request(req).await?;
    Ok(email)
}

async fn send(page: &Page, flow: Flow, form: PageForm) -> Response {
    let state = &page.state;
    let from_step_2 = !form.sent_at.is_empty();
    match ask_for_code(page, flow, &form).await {
        Ok(email) => {
            state.outbox_wake.notify_one();
            let policy = state.codes.policy();
            let notice = page
                .t(flow.sent)
                .replace("{email}", email.as_str())
                .replace("{minutes}", &(policy.ttl_secs / 60).max(1).to_string());
            let view = View {
                sent: true,
                email: email.as_str().to_string(),
                sent_at: state.clock.now(),
                wait: policy.resend_cooldown_secs,
                notice: Some(notice),
                errors: Errors::default(),
                challenged: false,
            };
            render(page, flow, view, StatusCode::OK).await
        }
        Err(e) => {
            let (field, text, status) = page.describe(&e);
            let challenged = matches!(e, ApiError::ChallengeRequired);
            // Sending has only the address to blame (a lock shows there
            // too), or the digits typed from the picture.
            let (field, text) = match field {
                Field::Form => (Field::Form, text),
                _ if challenged && form.answered_picture() => {
                    (Field::Challenge, page.t("err_challenge_wrong"))
                }
                _ => (Field::Email, text),
            };
            let wait = match e {
                ApiError::RateLimited { retry_after } => retry_after as i64,
                _ => 0,
            };
            let view = View {
                sent: from_step_2 && !matches!(e, ApiError::InvalidEmail(_)),
                email: form.email,
                sent_at: form.sent_at.parse().unwrap_or(0),
                wait,
                notice: None,
                errors: Errors::at(field, text),
                challenged,
            };
            render(page, flow, view, status).await
        }
    }
}

async fn finish(page: &Page, flow: Flow, form: PageForm) -> Response {
    match complete(page, flow, &form).await {
        Ok(session) => page.signed_in(&session),
        Err(e) => {
            let (field, text, status) = page.describe(&e);
            let sent_at: i64 = form.sent_at.parse().unwrap_or(0);
            let since = page.state.clock.now() - sent_at;
            let cooldown = page.state.codes.policy().resend_cooldown_secs;
            let view = View {
                sent: true,
                email: form.email,
                sent_at,
                wait: (cooldown - since).clamp(0, cooldown),
                notice: None,
                errors: Errors::at(field, text),
                challenged: false,
            };
            render(page, flow, view, status).await
        }
    }
}

/// The same checks, in the same order, as the JSON API's handlers.
async fn complete(page: &Page, flow: Flow, form: &PageForm) -> Result<Session, ApiError> {
    let accounts = &page.state.accounts;
    let email = EmailAddress::parse(form.email.trim())?;
    let code = form.code.trim();
    match flow.purpose {
        Purpose::Register => {
            let password = Password::parse(form.password.clone())?;
            accounts.register(&email, password, code).await
        }
        Purpose::ResetPassword => {
            let password = Password::parse(form.password.clone())?;
            // Every older session ends; this browser gets the new one.
            let session = accounts
                .reset_password(&email, code, password, page.lang)
                .await?;
            page.state.outbox_wake.notify_one();
            Ok(session)
        }
        Purpose::Login => accounts.login_with_code(&email, code).await,
    }
}

async fn render(page: &Page, flow: Flow, view: View, status: StatusCode) -> Response {
    let picture = page.picture(view.challenged).await;
    let other_address = match flow.mode {
        "code" => "/login?mode=code",
        _ => flow.path,
    };
    let extra = context! {
        action => page.carry(flow.path),
        other_address => page.carry(other_address),
        mode => flow.mode,
        intro => page.t(flow.intro),
        submit => page.t(flow.submit),
        password_field => flow.password,
        links => links(page, flow),
        sent => view.sent,
        email => view.email,
        sent_at => view.sent_at,
        wait => view.wait,
        notice => view.notice,
        errors => Value::from_serialize(&view.errors),
        challenge_worker => page.challenge_worker(),
        challenged => view.challenged,
        picture => Value::from_serialize(&picture),
    };
    page.render("flow.html", &page.t(flow.title), extra, status)
}

/// One link under a form: optional lead-in text, then the link. Links lead
/// between the sign-in pages, so each carries `return_to`.
pub fn link(page: &Page, lead: Option<&str>, text: &str, href: &str, id: &str) -> Value {
    context! {
        lead => lead.map(|k| page.t(k)),
        text => page.t(text),
        href => page.carry(href),
        id,
    }
}

fn links(page: &Page, flow: Flow) -> Vec<Value> {
    match flow.purpose {
        Purpose::Register => vec![link(
            page,
            Some("have_account"),
            "login_title",
            "/login",
            "to-login",
        )],
        Purpose::ResetPassword => vec![link(page, None, "login_title", "/login", "to-login")],
        Purpose::Login => vec![
            link(page, None, "with_password", "/login", "with-password"),
            to_register(page),
        ],
    }
}

/// "No account yet? Create one", under both sign-in forms.
pub fn to_register(page: &Page) -> Value {
    link(
        page,
        Some("no_account"),
        "register_link",
        "/register",
        "to-register",
    )
}
