//! The database goes away under a running instance: 503 `unavailable` while
//! it is gone (never a hang), and recovery by itself when it is back.

mod support;

use std::time::{Duration, Instant};

use support::app::{Reply, TestApp};
use support::pg::PgCluster;

async fn poll_until(
    app: &TestApp,
    what: &str,
    timeout: Duration,
    done: impl Fn(&Reply) -> bool,
) -> Reply {
    let deadline = Instant::now() + timeout;
    loop {
        let r = app.send_code("fault@example.com", "register").await;
        if done(&r) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: last answer {} {}",
            r.status,
            r.raw
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn pg_only_a_database_restart_gives_503_then_recovers() {
    let pg = PgCluster::start();
    let app = TestApp::start_shared(
        &pg.url(),
        TestApp::with(&[
            ("DATABASE_TIMEOUT_SECS", "2"),
            ("RESEND_COOLDOWN_SECS", "0"),
            ("RATE_EMAIL_PER_HOUR", "0"),
        ]),
    )
    .await;
    assert_eq!(
        app.send_code("fault@example.com", "register").await.status,
        202
    );

    pg.stop();
    let started = Instant::now();
    let r = poll_until(
        &app,
        "503 while the database is down",
        Duration::from_secs(30),
        |r| r.status == 503,
    )
    .await;
    assert_eq!(r.error_code(), "unavailable", "{}", r.raw);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "an answer, not a hang"
    );
    assert_eq!(app.get("/readyz").await.status, 503);
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "the process itself is fine"
    );

    pg.start_again();
    poll_until(
        &app,
        "recovery without a restart",
        Duration::from_secs(30),
        |r| r.status == 202,
    )
    .await;
    assert_eq!(app.get("/readyz").await.status, 200);
    let code = app
        .dev_code("fault@example.com", Duration::from_secs(10))
        .await;
    assert_eq!(code.len(), 6);
}
