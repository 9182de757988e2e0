//! `/login`: a password, or (`?mode=code`) a code sent by mail.

use axum::extract::{Form, RawQuery};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{context, Value};

use super::errors::{Errors, Field};
use super::flows::{self, link, PageForm};
use super::lang::query_param;
use super::view::Page;
use crate::domain::{EmailAddress, Password};

pub async fn page(page: Page, RawQuery(query): RawQuery) -> Response {
    // Already signed in: the account, not a second sign-in. (A stale cookie
    // still gets the form.)
    if let Some(token) = page.session.as_deref() {
        if page.state.accounts.user_for_token(token).await.is_ok() {
            return Redirect::to("/account").into_response();
        }
    }
    let query = query.as_deref();
    if query_param(query, "mode") == Some("code") {
        return flows::login_code_page(&page);
    }
    let notice = (query_param(query, "signed_out") == Some("1")).then(|| page.t("signed_out"));
    render(&page, "", notice, Errors::default(), StatusCode::OK)
}

pub async fn submit(mut page: Page, Form(form): Form<PageForm>) -> Response {
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
        email,
        notice,
        links,
        errors => Value::from_serialize(&errors),
    };
    page.render("login.html", &page.t("login_title"), extra, status)
}
