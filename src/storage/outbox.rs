//! The outbox's writes, written once over [`Exec`]: queue a message or a
//! webhook event, claim due ones of a channel with a lease (decoding each
//! once, here), and record how each try ended, fenced by the claim that made it.

use super::exec::{args, Arg, Exec};
use super::records::OutboxRow;
use super::*;

pub(super) async fn insert_message(db: &mut impl Exec, msg: &NewMessage, now: i64) -> Result<i64> {
    let id = db
        .int(
            "INSERT INTO outbox (message_id, recipient, kind, lang, payload, next_attempt_at, expires_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            args![
                &msg.message_id,
                msg.to.as_str(),
                msg.kind.as_str(),
                msg.lang.as_str(),
                &msg.payload,
                now,
                msg.expires_at,
                now
            ],
        )
        .await?;
    Ok(id.unwrap_or_default())
}

/// Queues a webhook event (in the transaction of the change it reports).
pub(super) async fn insert_webhook(db: &mut impl Exec, hook: &NewWebhook, now: i64) -> Result<()> {
    db.execute(
        "INSERT INTO outbox (message_id, recipient, kind, lang, payload, next_attempt_at, expires_at, created_at, channel)
         VALUES ($1, $2, 'webhook', '', $3, $4, $5, $6, 'webhook')",
        args![&hook.webhook_id, &hook.target, &hook.body, now, hook.expires_at, now],
    )
    .await?;
    Ok(())
}

/// `claim_sql` is the backend's claim (how it keeps two claimers apart
/// differs); `decode` turns a row into what the channel's worker sends.
pub(super) async fn claim_due<T>(
    db: &mut impl Exec,
    claim_sql: &'static str,
    channel: Channel,
    (now, lease_until, limit): (i64, i64, i64),
    decode: fn(OutboxRow) -> std::result::Result<T, String>,
) -> Result<Vec<T>> {
    let rows = db
        .messages(claim_sql, args![lease_until, now, channel.as_str(), limit])
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let (id, attempt) = (row.id, row.attempts);
        match decode(row) {
            Ok(msg) => claimed.push(msg),
            Err(why) => fail_undecodable(db, id, attempt, &why, now).await?,
        }
    }
    Ok(claimed)
}

/// A row this version cannot send (a kind written by a newer one, say)
/// fails at once with the reason, rather than coming back after every lease.
async fn fail_undecodable(
    db: &mut impl Exec,
    id: i64,
    attempt: i64,
    why: &str,
    now: i64,
) -> Result<()> {
    tracing::warn!(id, error = why, "cannot send an outbox message; failed");
    let failed = Finished {
        id,
        attempt,
        outcome: Outcome::Failed {
            error: format!("cannot send: {why}"),
        },
        at: now,
    };
    record_outcome(db, &failed).await?;
    Ok(())
}

/// The end of one delivery try.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        reply: String,
    },
    Retry {
        error: String,
        next_attempt_at: i64,
    },
    Failed {
        error: String,
    },
    /// Claimed but never tried (the worker is stopping): due again at once.
    Unclaimed,
}

/// A delivery try's end, to record.
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: i64,
    /// The claim that made the try (the message's `attempts` it set): an
    /// outcome is recorded only while no later claim has taken the message.
    pub attempt: i64,
    pub outcome: Outcome,
    /// When it ended.
    pub at: i64,
}

impl Finished {
    pub fn unclaimed(msg: &impl Claimed, at: i64) -> Self {
        Self {
            id: msg.id(),
            attempt: msg.attempts(),
            outcome: Outcome::Unclaimed,
            at,
        }
    }

    /// Whether the message is final (sent or failed).
    pub fn ends(&self) -> bool {
        matches!(self.outcome, Outcome::Sent { .. } | Outcome::Failed { .. })
    }
}

/// Sent messages go in statements of `SENT_CHUNK` rows each (on PostgreSQL
/// every statement is a round trip, one per mail before); the rest row by row.
pub(super) async fn record_outcomes(db: &mut impl Exec, finished: &[Finished]) -> Result<()> {
    let (sent, others): (Vec<&Finished>, Vec<&Finished>) = finished
        .iter()
        .partition(|f| matches!(f.outcome, Outcome::Sent { .. }));
    let mut chunks = sent.chunks_exact(SENT_CHUNK);
    for chunk in &mut chunks {
        let mut args = Vec::with_capacity(4 * SENT_CHUNK);
        for f in chunk {
            if let Outcome::Sent { reply } = &f.outcome {
                args.extend([
                    Arg::Int(f.id),
                    Arg::Int(f.attempt),
                    Arg::Text(reply),
                    Arg::Int(f.at),
                ]);
            }
        }
        db.execute(sent_chunk_sql(), &args).await?;
    }
    for f in chunks.remainder().iter().chain(&others) {
        record_outcome(db, f).await?;
    }
    Ok(())
}

const SENT_CHUNK: usize = 32;

/// `SENT_CHUNK` sent messages in one UPDATE … FROM (VALUES …), which both
/// databases take (SQLite since 3.33); the casts tell PostgreSQL the types.
fn sent_chunk_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let rows: Vec<String> = (0..SENT_CHUNK)
            .map(|i| {
                let n = 4 * i;
                format!(
                    "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), CAST(${} AS TEXT), CAST(${} AS BIGINT))",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4
                )
            })
            .collect();
        format!(
            "WITH done (id, attempt, reply, sent) AS (VALUES {})
             UPDATE outbox SET status = 'sent', sent_at = done.sent, last_reply = done.reply,
                 payload = NULL, lease_until = NULL
             FROM done WHERE outbox.id = done.id AND outbox.attempts = done.attempt
                 AND outbox.status = 'sending'",
            rows.join(", ")
        )
    })
}

/// Every statement is fenced by the claim (`attempts`) and `sending`: a try
/// whose lease ran out and whose message another claim took changes nothing.
/// Returns whether the outcome was recorded.
async fn record_outcome(db: &mut impl Exec, f: &Finished) -> Result<bool> {
    let (id, attempt, now) = (f.id, f.attempt, f.at);
    let changed = match &f.outcome {
        Outcome::Sent { reply } => db.execute(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = $2, payload = NULL, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![now, reply, id, attempt],
        )
        .await?,
        Outcome::Retry { error, next_attempt_at } => db.execute(
            "UPDATE outbox SET status = 'queued', last_error = $1, next_attempt_at = $2, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![error, *next_attempt_at, id, attempt],
        )
        .await?,
        Outcome::Failed { error } => db.execute(
            "UPDATE outbox SET status = 'failed', last_error = $1, failed_at = $2, payload = NULL, lease_until = NULL
             WHERE id = $3 AND attempts = $4 AND status = 'sending'",
            args![error, now, id, attempt],
        )
        .await?,
        Outcome::Unclaimed => db.execute(
            "UPDATE outbox SET status = 'queued', attempts = attempts - 1, next_attempt_at = $1, lease_until = NULL
             WHERE id = $2 AND attempts = $3 AND status = 'sending'",
            args![now, id, attempt],
        )
        .await?,
    };
    Ok(changed > 0)
}

/// Marks the message delivered to the dev mailbox (`dev`, so it never counts
/// as sent by SMTP) and stores it there, only for the claim that holds it.
pub(super) async fn deliver_to_dev_mailbox(
    db: &mut impl Exec,
    id: i64,
    attempt: i64,
    mail: &DevMail,
) -> Result<()> {
    let fenced = db
        .execute(
            "UPDATE outbox SET status = 'sent', sent_at = $1, last_reply = 'dev mailbox', dev = 1,
                 payload = NULL, lease_until = NULL
             WHERE id = $2 AND attempts = $3 AND status = 'sending'",
            args![mail.created_at, id, attempt],
        )
        .await?;
    if fenced > 0 {
        db.execute(
            "INSERT INTO dev_mailbox (recipient, subject, text, code, created_at) VALUES ($1, $2, $3, $4, $5)",
            args![&mail.to, &mail.subject, &mail.text, &mail.code, mail.created_at],
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "outbox_tests.rs"]
mod tests;

/// The outbox as the worker, the admin API and the dev mailbox see it.
impl Storage {
    pub async fn enqueue(&self, msg: NewMessage, now: i64) -> Result<i64> {
        self.write(&[], async move |db| insert_message(db, &msg, now).await)
            .await
    }

    /// Claims up to `limit` due mail messages (queued and due, or sending
    /// with an expired lease) until `lease_until`. A message this version
    /// cannot decode fails in the same transaction and is not returned.
    pub async fn claim_due_messages(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>> {
        self.claim_due(Channel::Mail, (now, lease_until, limit), OutboxRow::decode)
            .await
    }

    /// `claim_due_messages` for the webhook events.
    pub async fn claim_due_webhooks(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<WebhookMessage>> {
        self.claim_due(
            Channel::Webhook,
            (now, lease_until, limit),
            OutboxRow::decode_webhook,
        )
        .await
    }

    async fn claim_due<T: Send + 'static>(
        &self,
        channel: Channel,
        window: (i64, i64, i64),
        decode: fn(OutboxRow) -> std::result::Result<T, String>,
    ) -> Result<Vec<T>> {
        // How each backend keeps two claimers apart differs.
        let claim = match self.backend {
            Backend::Sqlite { .. } => sqlite::CLAIM_DUE,
            Backend::Postgres(_) => postgres::CLAIM_DUE,
        };
        self.write(&[], async move |db| {
            outbox::claim_due(db, claim, channel, window, decode).await
        })
        .await
    }

    /// Records how delivery tries ended, all in one transaction.
    pub async fn record_outcomes(&self, finished: Vec<Finished>) -> Result<()> {
        self.write(&[], async move |db| {
            outbox::record_outcomes(db, &finished).await
        })
        .await
    }

    /// When the channel's next queued row falls due (or a lease runs out).
    pub async fn next_due_at(&self, channel: Channel) -> Result<Option<i64>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::next_due_at(pool, channel).await,
            Backend::Postgres(pool) => postgres::next_due_at(pool, channel).await,
        }
    }

    pub async fn list_outbox(&self, status: Option<&str>, limit: i64) -> Result<Vec<OutboxEntry>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::list_outbox(pool, status, limit).await,
            Backend::Postgres(pool) => postgres::list_outbox(pool, status, limit).await,
        }
    }

    pub async fn outbox_stats(&self, since: i64) -> Result<OutboxStats> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::outbox_stats(pool, since).await,
            Backend::Postgres(pool) => postgres::outbox_stats(pool, since).await,
        }
    }

    /// Stores a message in the dev mailbox, for the claim (`attempt`) that holds it.
    pub async fn deliver_to_dev_mailbox(&self, id: i64, attempt: i64, mail: DevMail) -> Result<()> {
        self.write(&[], async move |db| {
            outbox::deliver_to_dev_mailbox(db, id, attempt, &mail).await
        })
        .await
    }

    pub async fn dev_mailbox(&self, limit: i64) -> Result<Vec<DevMail>> {
        match &self.backend {
            Backend::Sqlite { pool, .. } => sqlite::dev_mailbox(pool, limit).await,
            Backend::Postgres(pool) => postgres::dev_mailbox(pool, limit).await,
        }
    }
}
