//! `/account` (the signed-in page) and signing out.

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};

use super::errors::{Errors, Field};
use super::flows::PageForm;
use super::view::Page;
use crate::clock;
use crate::error::ApiError;

pub async fn page(page: Page) -> Response {
    let Some(token) = page.session.as_deref() else {
        return page.redirect(&page.keep_lang("/login"));
    };
    match page.state.accounts.user_for_token(token).await {
        Ok(user) => {
            let created_at = clock::rfc3339(user.created_at);
            let extra = context! {
                email => user.email,
                created_on => created_at.get(..10).unwrap_or(&created_at),
                created_at,
            };
            page.render(
                "account.html",
                &page.t("account_title"),
                extra,
                StatusCode::OK,
            )
        }
        // Ended or expired: forget the cookie too.
        Err(ApiError::Unauthorized) => page.signed_out(&page.keep_lang("/login")),
        Err(e) => message(&page, &e),
    }
}

pub async fn logout(page: Page, Form(form): Form<PageForm>) -> Response {
    if !page.csrf_ok(&form.csrf) {
        // Signing someone out from another site is refused; back to the account page.
        return page.redirect("/account");
    }
    if let Some(token) = page.session.as_deref() {
        match page.state.accounts.logout(token).await {
            Ok(()) | Err(ApiError::Unauthorized) => {}
            Err(e) => return message(&page, &e),
        }
    }
    page.signed_out("/login?signed_out=1")
}

/// A page that only explains what went wrong.
fn message(page: &Page, e: &ApiError) -> Response {
    let (_, text, status) = page.describe(e);
    let extra = context! { errors => Value::from_serialize(Errors::at(Field::Form, text)) };
    page.render("message.html", &page.t("account_title"), extra, status)
}
