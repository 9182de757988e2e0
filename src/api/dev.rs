//! The dev mailbox: with no SMTP settings, mail lands here instead.

use axum::extract::State;
use axum::middleware;
use axum::response::Html;
use axum::routing::get;
use axum::Json;
use serde::Serialize;
use utoipa::{OpenApi, ToSchema};

use super::openapi::{INTERNAL, UNAVAILABLE};
use super::AppState;
use crate::clock;
use crate::error::{ApiError, ErrorBody};
use crate::routes::Routes;
use crate::storage::DevMail;

const SHOWN: i64 = 100;

pub fn router() -> Routes {
    Routes::new()
        .route("/dev/mailbox", get(mailbox_html))
        .route("/dev/mailbox.json", get(mailbox_json))
        // Codes on a page: the same framing, sniffing and cache rules as the pages.
        .map(|r| r.layer(middleware::from_fn(crate::pages::security_headers)))
}

#[derive(OpenApi)]
#[openapi(paths(mailbox_html, mailbox_json))]
pub struct DevApi;

#[derive(Serialize, ToSchema)]
struct DevMailbox {
    /// The newest 100 mails, newest first.
    messages: Vec<DevMessage>,
}

#[derive(Serialize, ToSchema)]
struct DevMessage {
    #[schema(example = "me@example.com")]
    to: String,
    subject: String,
    /// The plain-text part.
    text: String,
    /// The code the mail carries; null for a notice without one.
    #[schema(example = "123456")]
    code: Option<String>,
    #[schema(format = DateTime, example = "2026-12-01T08:00:00Z")]
    created_at: String,
}

/// The dev mailbox as JSON
///
/// Only in dev mode (no SMTP server configured, see `DEV_MAILBOX`); otherwise
/// this path answers 404 `not_found`. Each code is in its own field, for
/// scripts and tests.
#[utoipa::path(get, path = "/dev/mailbox.json", tag = "dev",
    responses(
        (status = 200, description = "The newest mails.", body = DevMailbox),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn mailbox_json(State(state): State<AppState>) -> Result<Json<DevMailbox>, ApiError> {
    let mails = state.storage.dev_mailbox(SHOWN).await?;
    let messages = mails
        .iter()
        .map(|m| DevMessage {
            to: m.to.clone(),
            subject: m.subject.clone(),
            text: m.text.clone(),
            code: m.code.clone(),
            created_at: clock::rfc3339(m.created_at),
        })
        .collect();
    Ok(Json(DevMailbox { messages }))
}

/// The dev mailbox as a page
///
/// Only in dev mode; otherwise 404 `not_found`. Sends the pages' security headers.
#[utoipa::path(get, path = "/dev/mailbox", tag = "dev",
    responses(
        (status = 200, description = "The newest 100 mails, newest first.", content_type = "text/html", body = String),
        (status = 500, description = INTERNAL, body = ErrorBody),
        (status = 503, description = UNAVAILABLE, body = ErrorBody),
    ))]
async fn mailbox_html(State(state): State<AppState>) -> Result<Html<String>, ApiError> {
    let mails = state.storage.dev_mailbox(SHOWN).await?;
    Ok(Html(render(&mails)))
}

fn render(mails: &[DevMail]) -> String {
    let mut page = String::from(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>authmail dev mailbox</title>\
         <style>body{font-family:system-ui,'PingFang SC','Microsoft YaHei','Noto Sans CJK SC',sans-serif;\
         max-width:48rem;margin:1rem auto;padding:0 1rem}article{border:1px solid #ccc;border-radius:6px;\
         padding:.5rem 1rem;margin:1rem 0}pre{white-space:pre-wrap}</style></head><body>\
         <h1>Dev mailbox · 开发邮箱</h1><p>No SMTP server is configured, so mail lands here. \
         未配置 SMTP 服务器，邮件显示在这里。</p>",
    );
    if mails.is_empty() {
        page.push_str("<p>No mail yet. · 暂无邮件。</p>");
    }
    for m in mails {
        page.push_str(&format!(
            "<article><h2>{}</h2><p>To: {} · {}</p><pre>{}</pre></article>",
            escape(&m.subject),
            escape(&m.to),
            clock::rfc3339(m.created_at),
            escape(&m.text)
        ));
    }
    page.push_str("</body></html>");
    page
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
