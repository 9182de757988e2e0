//! The wiring: the shared state and the workers built from the settings,
//! each piece handed what it needs and nothing more.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Notify;

use super::message_domain;
use crate::accounts::Accounts;
use crate::api::AppState;
use crate::challenge::Challenges;
use crate::clock::Clock;
use crate::codes::Codes;
use crate::config::Settings;
use crate::jwt::Jwt;
use crate::keys::Keys;
use crate::mail::alert::{AlertHook, Alerts};
use crate::mail::outbox::{MailLane, RetryPolicy, Sink, WebhookLane, Worker, LEASE_SPARE};
use crate::mail::templates::Templates;
use crate::mail::transport::{send_deadline, SmtpSender};
use crate::pages::csrf::CsrfKey;
use crate::storage::Storage;
use crate::webhooks::{WebhookSender, Webhooks};

pub(super) fn build_state(
    settings: Arc<Settings>,
    storage: Storage,
    keys: Keys,
    jwt: Jwt,
    clock: Clock,
    alert_hook: Option<Arc<AlertHook>>,
    webhooks: Webhooks,
) -> AppState {
    let domain = message_domain(&settings);
    let codes = Codes::new(
        storage.clone(),
        keys.clone(),
        clock.clone(),
        settings.codes.clone(),
        &settings.limits,
        &settings.challenge,
        domain.clone(),
    )
    .with_alerts(alert_hook);
    let challenges = Challenges::new(
        storage.clone(),
        keys.clone(),
        clock.clone(),
        settings.challenge.bits,
    );
    let csrf = Arc::new(CsrfKey::derive(&keys));
    let accounts = Accounts::new(
        storage.clone(),
        keys,
        clock.clone(),
        codes.clone(),
        &settings.passwords,
        settings.session_ttl_secs,
        domain,
    )
    .with_webhooks(webhooks);
    AppState {
        settings,
        storage,
        codes,
        challenges,
        accounts,
        jwt,
        clock,
        outbox_wake: Arc::new(Notify::new()),
        csrf,
    }
}

pub(super) fn build_worker(
    settings: &Settings,
    storage: Storage,
    clock: &Clock,
    templates: Templates,
    alert_hook: Option<Arc<AlertHook>>,
) -> anyhow::Result<Worker> {
    let smtp = settings.smtp.as_ref().filter(|_| !settings.dev_mailbox());
    let (sink, concurrency, lease_secs) = match smtp {
        Some(smtp) => {
            let sender = SmtpSender::new(smtp).context("cannot set up the SMTP transport")?;
            // The lease outlives the longest possible send, so a live worker never
            // loses its claim to another mid-send.
            let lease = (send_deadline(smtp.timeout) + LEASE_SPARE).as_secs() as i64;
            (Sink::Smtp(Box::new(sender)), smtp.pool_size as usize, lease)
        }
        None => (Sink::DevMailbox, 4, 30),
    };
    Ok(Worker {
        storage: storage.clone(),
        clock: clock.clone(),
        retry: retry_policy(settings),
        concurrency,
        lease_secs,
        lane: MailLane {
            sink,
            storage: storage.clone(),
            clock: clock.clone(),
            templates: Arc::new(templates),
            code_ttl_secs: settings.codes.ttl_secs,
            public_url: settings.public_url.clone(),
            lang: settings.mail_lang,
            alerts: alert_hook
                .map(|hook| Alerts::new(&settings.alert, hook, storage, clock.clone())),
        },
    })
}

/// Webhook events are retried as mail is (`RETRY_BASE_SECS`, `RETRY_MAX_SECS`).
fn retry_policy(settings: &Settings) -> RetryPolicy {
    RetryPolicy {
        base_secs: settings.retry_base_secs,
        max_secs: settings.retry_max_secs,
    }
}

/// The worker that POSTs webhook events; none without `WEBHOOK_URL`. Its
/// lease outlives the longest try, as the mail worker's does.
pub(super) fn build_webhook_worker(
    settings: &Settings,
    storage: Storage,
    clock: &Clock,
) -> anyhow::Result<Option<Worker<WebhookLane>>> {
    let Some(webhook) = &settings.webhook else {
        return Ok(None);
    };
    Ok(Some(Worker {
        storage,
        clock: clock.clone(),
        retry: retry_policy(settings),
        concurrency: crate::mail::outbox::WEBHOOK_CONCURRENCY,
        lease_secs: (crate::webhooks::TRY_TIMEOUT + LEASE_SPARE).as_secs() as i64,
        lane: WebhookLane {
            sender: WebhookSender::new(webhook)?,
            clock: clock.clone(),
        },
    }))
}
