//! `/login`: a password, or (`?mode=code`) a code sent by mail.

use axum::extract::RawQuery;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};

use super::errors::{Errors, Field};
use super::flows::{self, link, PageForm};
use super::lang::query_param;
use super::posted::Posted;
use super::view::Page;
use super::{
    LangQuery, ReturnToQuery, FORM_ERRORS, FORM_ERRORS_OR_BAD_FORM, FORM_REFUSED, NOT_A_FORM,
};
use crate::domain::{EmailAddress, Password};

/// The `/login` page's own query parameters.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // read from the raw query; here to be described
pub(crate) struct LoginQuery {
    /// `code`: sign in with a code sent by mail instead of a password.
    #[param(required = false)]
    mode: Option<String>,
    /// `1`: say "you are signed out" above the form.
    #[param(required = false)]
    signed_out: Option<String>,
}

/// Sign in: the form
#[utoipa::path(get, path = "/login", operation_id = "login_page", tag = "pages", params(LangQuery, LoginQuery, ReturnToQuery),
    responses(
        (status = 200, description = "The password form, or with `mode=code` the code form.", content_type = "text/html", body = String),
        (status = 303, description = "Already signed in: to `return_to` when it is allowed, else `/account`.", headers(("Location" = String))),
    ))]
pub async fn page(page: Page, RawQuery(query): RawQuery) -> Response {
    // Already signed in: where the sign-in would lead, not a second sign-in.
    // (A stale cookie still gets the form.)
    if let Some(token) = page.session.as_deref() {
        if page.state.accounts.user_for_token(token).await.is_ok() {
            return page.redirect(page.after_sign_in());
        }
    }
    let query = query.as_deref();
    if query_param(query, "mode") == Some("code") {
        return flows::login_code_page(&page).await;
    }
    let notice = (query_param(query, "signed_out") == Some("1")).then(|| page.t("signed_out"));
    render(&page, "", notice, Errors::default(), StatusCode::OK)
}

/// Sign in with a password, or by code
///
/// With `mode=code` the form works as the code flows do (`action=send`, then
/// the code); otherwise `email` and `password`.
#[utoipa::path(post, path = "/login", operation_id = "login_submit", tag = "pages", params(LangQuery, ReturnToQuery),
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "`mode=code`: the code was sent; the code.", content_type = "text/html", body = String),
        (status = 303, description = "Signed in, with the session cookie: to `return_to` when it is allowed, else `/account`.", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = FORM_ERRORS_OR_BAD_FORM, content_type = "text/html", body = String),
        (status = 401, description = "Wrong address or password: the form again.", content_type = "text/html", body = String),
        (status = 403, description = FORM_REFUSED, content_type = "text/html", body = String),
        (status = 415, description = NOT_A_FORM, content_type = "text/html", body = String),
        (status = 429, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 500, description = FORM_ERRORS, content_type = "text/html", body = String),
        (status = 503, description = FORM_ERRORS, content_type = "text/html", body = String),
    ))]
pub async fn submit(Posted { mut page, form }: Posted) -> Response {
    if form.mode == "code" {
        return flows::submit(page, flows::LOGIN_CODE, form).await;
    }
    if !page.csrf_ok(&form.csrf) {
        page.renew_csrf();
        let errors = Errors::at(Field::Form, page.t("err_csrf"));
        return render(&page, &form.email, None, errors, StatusCode::FORBIDDEN);
    }
    let accounts = &page.state.accounts;
    // As in the API: input that cannot belong to an account is the same
    // "wrong address or password", after the same work.
    let result = match (
        EmailAddress::parse(form.email.trim()),
        Password::parse(form.password),
    ) {
        (Ok(email), Ok(password)) => accounts.login(&email, password, &page.ip_key()).await,
        _ => Err(accounts.reject_login().await),
    };
    match result {
        Ok(session) => page.signed_in(&session),
        Err(e) => {
            let (field, text, status) = page.describe_login(&e);
            render(&page, &form.email, None, Errors::at(field, text), status)
        }
    }
}

fn render(
    page: &Page,
    email: &str,
    notice: Option<String>,
    errors: Errors,
    status: StatusCode,
) -> Response {
    let links = vec![
        link(page, None, "with_code", "/login?mode=code", "with-code"),
        link(page, None, "forgot_link", "/forgot-password", "to-forgot"),
        flows::to_register(page),
    ];
    let extra = context! {
        action => page.carry("/login"),
        email,
        notice,
        links,
        errors => Value::from_serialize(&errors),
    };
    page.render("login.html", &page.t("login_title"), extra, status)
}
