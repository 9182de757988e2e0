//! The outbox writes on a real SQLite schema: chunked outcomes, fencing, undecodable rows.

use super::*;
use crate::domain::{Lang, Purpose};
use crate::storage::exec::{run_now, SyncConn};

fn outbox_db() -> rusqlite::Connection {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    conn.execute_batch(include_str!("../../migrations/sqlite/0001_initial.sql"))
        .unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0002_outbox_due_order.sql"
    ))
    .unwrap();
    conn.execute_batch(include_str!(
        "../../migrations/sqlite/0003_password_guessing.sql"
    ))
    .unwrap();
    conn.execute_batch(include_str!("../../migrations/sqlite/0005_webhooks.sql"))
        .unwrap();
    for i in 1..=40 {
        conn.execute(
            "INSERT INTO outbox (message_id, recipient, kind, lang, payload, status, attempts, next_attempt_at, expires_at, created_at)
             VALUES (?1, 'a@example.com', 'register', 'en', '123456', 'sending', 1, 0, 9999, 0)",
            [format!("<{i}@test>")],
        )
        .unwrap();
    }
    conn
}

/// id, status, sent_at, last_reply, payload
type Row = (i64, String, Option<i64>, Option<String>, Option<String>);

#[test]
fn outcomes_are_recorded_whole_in_chunks_and_row_by_row() {
    let mut conn = outbox_db();
    // 39 sent (one chunk of 32 and 7 left over) and one to retry.
    let mut finished: Vec<Finished> = (1..=39)
        .map(|id| Finished {
            id,
            attempt: 1,
            outcome: Outcome::Sent {
                reply: format!("250 ok {id}"),
            },
            at: 1000 + id,
        })
        .collect();
    finished.push(Finished {
        id: 40,
        attempt: 1,
        outcome: Outcome::Retry {
            error: "451 later".into(),
            next_attempt_at: 5000,
        },
        at: 1040,
    });
    run_now(record_outcomes(&mut SyncConn(&mut conn), &finished)).unwrap();
    let rows: Vec<Row> = conn
        .prepare("SELECT id, status, sent_at, last_reply, payload FROM outbox ORDER BY id")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for (id, status, sent_at, reply, payload) in &rows[..39] {
        assert_eq!(status, "sent", "row {id}");
        assert_eq!(*sent_at, Some(1000 + id));
        assert_eq!(reply.as_deref(), Some(format!("250 ok {id}").as_str()));
        assert_eq!(*payload, None, "the code goes once the mail is final");
    }
    let (_, status, sent_at, _, payload) = &rows[39];
    assert_eq!((status.as_str(), *sent_at), ("queued", None));
    assert_eq!(payload.as_deref(), Some("123456"));
}

/// (status, attempts, next_attempt_at, last_error)
fn state(conn: &rusqlite::Connection, id: i64) -> (String, i64, i64, Option<String>) {
    conn.query_row(
        "SELECT status, attempts, next_attempt_at, last_error FROM outbox WHERE id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
    .unwrap()
}

#[test]
fn a_row_this_version_cannot_decode_fails_alone_and_the_rest_are_claimed() {
    let mut conn = outbox_db();
    conn.execute_batch(
        "UPDATE outbox SET status = 'queued', attempts = 0 WHERE id <= 3;
         UPDATE outbox SET kind = 'from_a_newer_version' WHERE id = 2;
         UPDATE outbox SET recipient = 'not an address' WHERE id = 3;",
    )
    .unwrap();
    let claim = |conn: &mut rusqlite::Connection| {
        let mut db = SyncConn(conn);
        run_now(claim_due(
            &mut db,
            sqlite::CLAIM_DUE,
            Channel::Mail,
            (100, 200, 10),
            OutboxRow::decode,
        ))
        .unwrap()
    };
    let claimed = claim(&mut conn);
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    let msg = &claimed[0];
    assert_eq!((msg.id, msg.attempts), (1, 1));
    assert_eq!(msg.kind, MailKind::Code(Purpose::Register));
    assert_eq!((msg.to.as_str(), msg.lang), ("a@example.com", Lang::En));
    let (status, attempts, _, error) = state(&conn, 2);
    assert_eq!((status.as_str(), attempts), ("failed", 1));
    assert_eq!(
        error.as_deref(),
        Some("cannot send: unknown mail kind \"from_a_newer_version\"")
    );
    let (status, _, _, error) = state(&conn, 3);
    assert_eq!(status, "failed");
    assert_eq!(
        error.as_deref(),
        Some("cannot send: the recipient is not a valid address")
    );
    assert!(
        claim(&mut conn).is_empty(),
        "the failed rows do not come back"
    );
}

#[test]
fn a_late_outcome_of_an_earlier_claim_changes_nothing() {
    let mut conn = outbox_db();
    // Rows 1..=33 were claimed again (attempt 2) after the first claim's lease ran out.
    conn.execute("UPDATE outbox SET attempts = 2 WHERE id <= 33", [])
        .unwrap();
    let late = |id, outcome| Finished {
        id,
        attempt: 1,
        outcome,
        at: 1000,
    };
    let mut finished: Vec<Finished> = (1..=32)
        .map(|id| {
            late(
                id,
                Outcome::Sent {
                    reply: "250".into(),
                },
            )
        })
        .collect();
    finished.push(late(
        33,
        Outcome::Retry {
            error: "451".into(),
            next_attempt_at: 5000,
        },
    ));
    run_now(record_outcomes(&mut SyncConn(&mut conn), &finished)).unwrap();
    for kind in [
        Outcome::Failed {
            error: "550".into(),
        },
        Outcome::Unclaimed,
    ] {
        run_now(record_outcomes(&mut SyncConn(&mut conn), &[late(33, kind)])).unwrap();
    }
    for id in 1..=33 {
        assert_eq!(state(&conn, id), ("sending".into(), 2, 0, None), "row {id}");
    }
    // The claim that holds the message records its outcome.
    let current = Finished {
        attempt: 2,
        ..late(33, Outcome::Unclaimed)
    };
    run_now(record_outcomes(&mut SyncConn(&mut conn), &[current])).unwrap();
    assert_eq!(state(&conn, 33), ("queued".into(), 1, 1000, None));
}

/// The dev mailbox is fenced like the outcomes: by the claim that holds the message.
#[test]
fn the_dev_mailbox_takes_only_the_holding_claims_copy() {
    let mut conn = outbox_db();
    // Row 1 was claimed again (attempt 2) after the first claim's lease ran out.
    conn.execute("UPDATE outbox SET attempts = 2 WHERE id = 1", [])
        .unwrap();
    let mail = DevMail {
        to: "a@example.com".into(),
        subject: "s".into(),
        text: "t".into(),
        code: Some("123456".into()),
        created_at: 1000,
    };
    let deliver = |conn: &mut rusqlite::Connection, attempt| {
        run_now(deliver_to_dev_mailbox(
            &mut SyncConn(conn),
            1,
            attempt,
            &mail,
        ))
        .unwrap()
    };
    deliver(&mut conn, 1);
    assert_eq!(state(&conn, 1).0, "sending");
    deliver(&mut conn, 2);
    assert_eq!(state(&conn, 1).0, "sent");
    let stored: i64 = conn
        .query_row("SELECT COUNT(*) FROM dev_mailbox", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, 1, "only the holding claim's copy lands");
}
