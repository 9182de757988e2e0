//! The dev mailbox: with no SMTP settings, mail lands here instead.

use axum::extract::State;
use axum::middleware;
use axum::response::Html;
use axum::routing::get;
use axum::Json;
use serde_json::{json, Value};

use super::AppState;
use crate::clock;
use crate::error::ApiError;
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

async fn mailbox_json(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mails = state.storage.dev_mailbox(SHOWN).await?;
    let messages: Vec<Value> = mails
        .iter()
        .map(|m| json!({"to": m.to, "subject": m.subject, "text": m.text, "code": m.code, "created_at": clock::rfc3339(m.created_at)}))
        .collect();
    Ok(Json(json!({ "messages": messages })))
}

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
