//! Tables stay bounded: what no rule needs any more is pruned in the
//! background (at start and every few minutes), on either backend.

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::wait::eventually;

#[tokio::test]
async fn old_rows_are_pruned() {
    let mut app = TestApp::builder()
        .envs(&[("RETENTION_DAYS", "7"), ("RESEND_COOLDOWN_SECS", "0")])
        .start()
        .await;
    for who in ["old", "new"] {
        assert_eq!(
            app.send_code(&format!("{who}@example.com"), "register")
                .await
                .status,
            202
        );
        app.dev_code(&format!("{who}@example.com"), Duration::from_secs(10))
            .await;
    }
    assert_eq!(app.db.int("SELECT COUNT(*) FROM outbox").await, 2);
    // Age the first address's rows past every horizon: 8 days ago.
    let old = "(CAST(strftime('%s','now') AS INTEGER) - 8 * 86400)";
    let old = if app.db.is_postgres() {
        "(CAST(EXTRACT(EPOCH FROM now()) AS BIGINT) - 8 * 86400)"
    } else {
        old
    };
    app.db
        .exec(&format!(
        "UPDATE outbox SET created_at = {old}, sent_at = {old} WHERE recipient = 'old@example.com'"
    ))
        .await;
    app.db
        .exec(&format!(
            "UPDATE codes SET expires_at = {old} WHERE email = 'old@example.com'"
        ))
        .await;
    app.db
        .exec(&format!(
            "UPDATE code_requests SET at = {old} WHERE email = 'old@example.com'"
        ))
        .await;
    app.db
        .exec(&format!(
            "UPDATE dev_mailbox SET created_at = {old} WHERE recipient = 'old@example.com'"
        ))
        .await;

    app.restart().await; // pruning runs at start, then every ten minutes
    eventually(Duration::from_secs(10), || async {
        match app.db.int("SELECT COUNT(*) FROM outbox").await == 1 {
            true => Ok(()),
            false => Err("old outbox rows were not pruned"),
        }
    })
    .await;
    for (table, column) in [
        ("codes", "email"),
        ("code_requests", "email"),
        ("dev_mailbox", "recipient"),
        ("outbox", "recipient"),
    ] {
        let left = |who: &str| {
            format!("SELECT COUNT(*) FROM {table} WHERE {column} = '{who}@example.com'")
        };
        assert_eq!(app.db.int(&left("old")).await, 0, "{table}: old rows go");
        assert_eq!(
            app.db.int(&left("new")).await,
            1,
            "{table}: recent rows stay"
        );
    }
}
