//! Tables stay bounded: what no rule needs any more is pruned in the
//! background (at start and every few minutes), on either backend.

use std::time::Duration;

use crate::support::app::TestApp;
use crate::support::wait::eventually;

#[tokio::test]
async fn old_rows_are_pruned() {
    let mut app = TestApp::builder()
        .manual_clock()
        .envs(&[("RETENTION_DAYS", "7"), ("RESEND_COOLDOWN_SECS", "0")])
        .start()
        .await;
    // "old" writes its rows, then 8 days pass (past every horizon), then "new".
    for who in ["old", "new"] {
        assert_eq!(
            app.send_code(&format!("{who}@example.com"), "register")
                .await
                .status,
            202
        );
        app.dev_code(&format!("{who}@example.com"), Duration::from_secs(10))
            .await;
        if who == "old" {
            app.clock().advance(8 * 86_400);
        }
    }
    assert_eq!(app.db.int("SELECT COUNT(*) FROM outbox").await, 2);

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
        ("code_requests", "mailbox"),
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
