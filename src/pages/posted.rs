//! A form post as the page handlers take it: the page and its form. A body
//! that is not a form, or a form that cannot be read, is answered like the
//! pages' other errors: a page in the browser's language, with the status the
//! JSON API gives the same mistake (415, 413, else 400), never the web
//! framework's plain text.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::{context, Value};

use super::errors::{Errors, Field};
use super::flows::PageForm;
use super::view::Page;
use crate::state::AppState;

pub struct Posted {
    pub page: Page,
    pub form: PageForm,
}

impl FromRequest<AppState> for Posted {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let page = Page::from_request_parts(&mut parts, state).await?;
        let back = back_to(&page, parts.uri.path());
        match Form::<PageForm>::from_request(Request::from_parts(parts, body), state).await {
            Ok(Form(form)) => Ok(Posted { page, form }),
            Err(rejection) => Err(unreadable(&page, &rejection, &back)),
        }
    }
}

/// The form the post came from, to try again: the sign-in pages carry
/// `return_to`; anything else (sign-out) goes back to the account.
fn back_to(page: &Page, path: &str) -> String {
    match path {
        "/login" | "/register" | "/forgot-password" => page.carry(path),
        _ => "/account".to_string(),
    }
}

fn unreadable(page: &Page, rejection: &FormRejection, back: &str) -> Response {
    let (status, key) = match rejection {
        FormRejection::InvalidFormContentType(_) => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "err_not_a_form")
        }
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            (StatusCode::PAYLOAD_TOO_LARGE, "err_form_too_large")
        }
        _ => (StatusCode::BAD_REQUEST, "err_bad_form"),
    };
    tracing::debug!(error = %rejection.body_text(), %status, "unreadable page form");
    let extra = context! {
        errors => Value::from_serialize(Errors::at(Field::Form, page.t(key))),
        back,
    };
    page.render("message.html", &page.t("unreadable_title"), extra, status)
}
