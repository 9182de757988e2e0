//! `/account` (the signed-in page) and signing out.

use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};

use super::errors::{Errors, Field};
use super::flows::PageForm;
use super::posted::Posted;
use super::view::Page;
use super::{LangQuery, BAD_FORM, NOT_A_FORM};
use crate::clock;
use crate::error::ApiError;

/// The account
#[utoipa::path(get, path = "/account", operation_id = "account_page", tag = "pages", params(LangQuery),
    responses(
        (status = 200, description = "The signed-in user's address and when the account was made, and a sign-out button.", content_type = "text/html", body = String),
        (status = 303, description = "No live session: to `/login` (an ended session's cookie is cleared).", headers(("Location" = String))),
        (status = 500, description = "A page that says what went wrong.", content_type = "text/html", body = String),
        (status = 503, description = "A page that says what went wrong.", content_type = "text/html", body = String),
    ))]
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

/// Sign out
///
/// Ends the session and clears its cookie. Without a valid CSRF token the
/// browser goes back to `/account`, still signed in.
#[utoipa::path(post, path = "/logout", operation_id = "page_logout", tag = "pages",
    request_body(content = PageForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "To `/login?signed_out=1`, the session cookie cleared; or to `/account` when the CSRF token is wrong.", headers(("Location" = String), ("Set-Cookie" = String))),
        (status = 400, description = BAD_FORM, content_type = "text/html", body = String),
        (status = 415, description = NOT_A_FORM, content_type = "text/html", body = String),
        (status = 500, description = "A page that says what went wrong.", content_type = "text/html", body = String),
        (status = 503, description = "A page that says what went wrong.", content_type = "text/html", body = String),
    ))]
pub async fn logout(Posted { page, form }: Posted) -> Response {
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
