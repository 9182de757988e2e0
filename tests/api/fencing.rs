//! Outbox fencing (contract v2.1): once a lease has run out and another claim
//! has taken a message, a late outcome of the first try changes nothing. The
//! race is forced on the storage itself, on the test database of
//! `AUTHMAIL_TEST_DB` (SQLite by default, PostgreSQL in the PostgreSQL run).

use std::time::Duration;

use crate::support::db::TestDb;
use authmail::domain::{EmailAddress, Lang, Purpose};
use authmail::storage::{
    DevMail, Finished, MailKind, NewMessage, OutboxMessage, Outcome, PoolSettings, Storage,
};

fn message(i: usize, now: i64) -> NewMessage {
    NewMessage {
        message_id: format!("<{i}@fencing.test>"),
        to: EmailAddress::parse(&format!("to{i}@example.com")).unwrap(),
        kind: MailKind::Code(Purpose::Login),
        lang: Lang::En,
        payload: Some("123456".into()),
        expires_at: now + 600,
    }
}

/// 32 sent (one chunked statement) and the rest to retry, for these claims.
fn outcomes(claimed: &[OutboxMessage], at: i64) -> Vec<Finished> {
    claimed
        .iter()
        .enumerate()
        .map(|(i, m)| Finished {
            id: m.id,
            attempt: m.attempts,
            outcome: if i < 32 {
                Outcome::Sent {
                    reply: "250 ok".into(),
                }
            } else {
                Outcome::Retry {
                    error: "451 try later".into(),
                    next_attempt_at: at + 30,
                }
            },
            at,
        })
        .collect()
}

#[tokio::test]
async fn a_late_outcome_of_an_expired_claim_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::chosen(dir.path(), "fencing.db").await;
    let pool = PoolSettings {
        max_connections: 4,
        timeout: Duration::from_secs(5),
    };
    let storage = Storage::open(&db.url(), &pool).await.unwrap();
    storage.migrate().await.unwrap();
    let now = authmail::clock::Clock::system().now();
    for i in 0..33 {
        storage.enqueue(message(i, now), now).await.unwrap();
    }
    // The first claim's lease runs out before its tries end; a second claim
    // (another instance) takes every message.
    let first = storage.claim_due_messages(now, now + 1, 100).await.unwrap();
    assert_eq!(first.len(), 33);
    let second = storage
        .claim_due_messages(now + 5, now + 60, 100)
        .await
        .unwrap();
    assert_eq!(second.len(), 33, "the expired leases are claimed again");
    assert!(second.iter().all(|m| m.attempts == 2));

    // Now the first claim's outcomes arrive, of every kind.
    storage
        .record_outcomes(outcomes(&first, now + 6))
        .await
        .unwrap();
    let last = &first[32];
    for outcome in [
        Outcome::Failed {
            error: "550 no".into(),
        },
        Outcome::Unclaimed,
    ] {
        let late = Finished {
            id: last.id,
            attempt: last.attempts,
            outcome,
            at: now + 6,
        };
        storage.record_outcomes(vec![late]).await.unwrap();
    }
    let mail = DevMail {
        to: first[0].to.to_string(),
        subject: "code".into(),
        text: "123456".into(),
        code: Some("123456".into()),
        created_at: now + 6,
    };
    storage
        .deliver_to_dev_mailbox(first[0].id, first[0].attempts, mail.clone())
        .await
        .unwrap();
    let rows = storage.list_outbox(None, 100).await.unwrap();
    assert_eq!(rows.len(), 33);
    for row in &rows {
        assert_eq!(
            (row.status.as_str(), row.attempts, row.last_error.as_deref()),
            ("sending", 2, None),
            "message {} changed by a late outcome",
            row.id
        );
    }
    assert!(storage.dev_mailbox(10).await.unwrap().is_empty());

    // The claim that holds the messages records its outcomes.
    storage
        .record_outcomes(outcomes(&second, now + 7))
        .await
        .unwrap();
    let rows = storage.list_outbox(None, 100).await.unwrap();
    let sent = rows.iter().filter(|r| r.status == "sent").count();
    let queued: Vec<_> = rows.iter().filter(|r| r.status == "queued").collect();
    assert_eq!(sent, 32);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].attempts, 2);
    assert_eq!(queued[0].last_error.as_deref(), Some("451 try later"));
    println!(
        "fencing [{}]: 33 late outcomes of an expired claim (32 chunked sent, retry, failed, \
         unclaimed, dev mailbox) changed nothing; the holding claim's 33 were recorded",
        if storage.is_postgres() {
            "postgres"
        } else {
            "sqlite"
        }
    );
}
