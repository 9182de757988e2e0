//! The operator commands besides `serve`: migrate, doctor, send-test, outbox, keys.

use std::path::Path;
use std::process::ExitCode;

use crate::app;
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::{EmailAddress, Lang};
use crate::jwt;
use crate::mail::diagnose::{Diagnosis, Stage};
use crate::mail::new_message_id;
use crate::mail::templates::{MailContext, Templates};
use crate::mail::transport::{Delivery, SmtpSender};
use crate::messages::{Args, CliText};

pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    app::open_storage(settings).await?;
    println!("migrations applied to {}", settings.database_url);
    Ok(())
}

fn no_smtp(lang: Lang) -> ExitCode {
    eprintln!("authmail: {}", CliText::NoSmtp.text(lang));
    ExitCode::from(2)
}

/// The step-by-step SMTP check; `env_file` is the settings file read, if any.
pub async fn doctor(settings: &Settings, lang: Lang, env_file: Option<&Path>) -> ExitCode {
    let Some(smtp) = &settings.smtp else {
        return no_smtp(lang);
    };
    match crate::doctor::run(smtp, lang, env_file).await {
        true => ExitCode::SUCCESS,
        false => ExitCode::from(1),
    }
}

pub async fn send_test(
    settings: &Settings,
    templates: &Templates,
    lang: Lang,
    to: &str,
) -> ExitCode {
    let Some(smtp) = &settings.smtp else {
        return no_smtp(lang);
    };
    let to = match EmailAddress::parse(to) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("authmail: --to: {e}");
            return ExitCode::from(2);
        }
    };
    let ctx = MailContext {
        purpose: "",
        code: None,
        minutes: 0,
        email: to.as_str(),
        public_url: &settings.public_url,
    };
    let sender = match SmtpSender::new(smtp) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("authmail: {e:#}");
            return ExitCode::from(2);
        }
    };
    let sent = match templates.render("test", lang, &ctx) {
        Ok(mail) => {
            sender
                .send(
                    &new_message_id(smtp.from.domain(), Clock::system().now()),
                    to.as_str(),
                    &mail,
                )
                .await
        }
        Err(e) => Delivery::Permanent(e),
    };
    sender.shutdown().await;
    match sent {
        Delivery::Sent(reply) => {
            println!("✓ {reply}");
            ExitCode::SUCCESS
        }
        Delivery::Transient(raw) | Delivery::Permanent(raw) => {
            println!("✗ {raw}");
            if let Some(d) = Diagnosis::of(&raw, Stage::Any, sender.context(), lang) {
                let args: &Args = &[("why", &d.why), ("fix", &d.fix)];
                println!("{}", CliText::CauseAndFix.say(lang, args));
            }
            ExitCode::from(1)
        }
    }
}

/// Lists the outbox. Only reads: a SQLite file that does not exist is a
/// mistyped `DATABASE_URL` or working directory, said as such (exit 2), not
/// an empty database created in the wrong place.
pub async fn outbox(
    settings: &Settings,
    lang: Lang,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> ExitCode {
    if let Some(missing) = no_database_file(settings, lang) {
        return missing;
    }
    match list_outbox(settings, status, limit, as_json).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authmail: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Exit 2 when `DATABASE_URL` names a SQLite file that does not exist: for
/// a command about an existing deployment, that is a mistyped setting or
/// working directory, said as such, not an empty database to create.
fn no_database_file(settings: &Settings, lang: Lang) -> Option<ExitCode> {
    let path = settings
        .database_url
        .sqlite_path()
        .filter(|p| !p.exists())?;
    let shown = path.display();
    let args: &Args = &[("path", &shown)];
    let said = CliText::NoDatabaseFile.say(lang, args);
    eprintln!("authmail: DATABASE_URL: {said}");
    Some(ExitCode::from(2))
}

/// `authmail keys rotate`: a new JWT signing key, for every instance.
pub async fn rotate_keys(settings: &Settings, lang: Lang) -> ExitCode {
    if let Some(missing) = no_database_file(settings, lang) {
        return missing;
    }
    let rotated = async {
        let (storage, keys) = app::open_storage(settings).await?;
        let now = Clock::system().now();
        anyhow::Ok(jwt::rotate(&storage, &keys, &settings.jwt, now).await?)
    };
    match rotated.await {
        Ok(rotated) => {
            let refresh = jwt::REFRESH_SECS;
            let args: &Args = &[("kid", &rotated.kid), ("refresh", &refresh)];
            println!("{}", CliText::KeyRotated.say(lang, args));
            if let Some(until) = rotated.previous_published_until {
                let until = crate::clock::rfc3339(until);
                println!("{}", CliText::KeyRetired.say(lang, &[("until", &until)]));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authmail: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn list_outbox(
    settings: &Settings,
    status: Option<&str>,
    limit: i64,
    as_json: bool,
) -> anyhow::Result<()> {
    let (storage, _) = app::open_storage(settings).await?;
    let entries = storage.list_outbox(status, limit).await?;
    let mut out = String::new();
    if as_json {
        for e in &entries {
            let message = crate::api::admin::OutboxMessage::from(e);
            out.push_str(&serde_json::to_string(&message)?);
            out.push('\n');
        }
    } else {
        out = outbox_table(&entries);
    }
    // `authmail outbox | head` closes the pipe early: that is not an error.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Columns aligned on the widest cell; the last error, often long, goes last.
/// The purpose tells a webhook event (to a URL) from mail.
fn outbox_table(entries: &[crate::storage::OutboxEntry]) -> String {
    let rows: Vec<[String; 6]> = entries
        .iter()
        .map(|e| {
            [
                e.id.to_string(),
                e.status.clone(),
                e.attempts.to_string(),
                e.kind.clone(),
                e.recipient.clone(),
                e.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "STATUS",
        "ATTEMPTS",
        "PURPOSE",
        "RECIPIENT",
        "LAST ERROR",
    ]
    .map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
