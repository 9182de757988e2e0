//! PostgreSQL restarted under load: 503 `unavailable` while it is down, never
//! a 500; recovery without restarting authmail; and no code without its mail
//! (or the reverse), since both are written in one transaction.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::api::into_reply;
use crate::support::app::TestApp;
use crate::support::db::TestDb;
use crate::support::pg::PgCluster;
use crate::support::wait::eventually;

#[derive(Default)]
struct Tally {
    accepted: Vec<String>,
    unavailable: usize,
    other: Vec<String>,
}

async fn load(base: String, worker: usize, stop: Arc<AtomicBool>, tally: Arc<Mutex<Tally>>) {
    let client = reqwest::Client::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let to = format!("w{worker}n{i}@example.com");
        i += 1;
        let sent = client
            .post(format!("{base}/api/auth/send-code"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"email":"{to}","purpose":"register"}}"#))
            .send()
            .await
            .expect("authmail itself stays up");
        let r = into_reply(sent).await;
        let mut t = tally.lock().unwrap();
        match (r.status, r.error_code()) {
            (202, _) => t.accepted.push(to),
            (503, "unavailable") => t.unavailable += 1,
            _ => t.other.push(format!("{} {}", r.status, r.raw)),
        }
    }
}

#[tokio::test]
async fn pg_only_a_restart_under_load_is_503_then_whole() {
    let pg = PgCluster::start();
    let app = TestApp::builder()
        .process()
        .db(TestDb::at(&pg.url()))
        .no_limits()
        .env("DATABASE_TIMEOUT_SECS", "2")
        .start()
        .await;
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let workers: Vec<_> = (0..4)
        .map(|w| {
            tokio::spawn(load(
                app.base.clone(),
                w,
                Arc::clone(&stop),
                Arc::clone(&tally),
            ))
        })
        .collect();

    let wait_for = |what: &'static str, done: Box<dyn Fn(&Tally) -> bool>| {
        let tally = Arc::clone(&tally);
        eventually(Duration::from_secs(60), move || {
            let ok = done(&tally.lock().unwrap());
            async move { ok.then_some(()).ok_or(what) }
        })
    };
    wait_for("load flows", Box::new(|t| t.accepted.len() >= 50)).await;
    pg.stop();
    wait_for("503 while down", Box::new(|t| t.unavailable >= 5)).await;
    let asked = Instant::now();
    let r = app.send_code("probe@example.com", "register").await;
    assert_eq!(
        (r.status, r.error_code()),
        (503, "unavailable"),
        "{}",
        r.raw
    );
    assert!(
        asked.elapsed() < Duration::from_secs(15),
        "an answer, not a hang"
    );
    assert_eq!(app.get("/readyz").await.status, 503);
    assert_eq!(
        app.get("/healthz").await.status,
        200,
        "the process itself is fine"
    );
    let before = tally.lock().unwrap().accepted.len();
    pg.start_again();
    wait_for(
        "recovery without a restart",
        Box::new(move |t| t.accepted.len() >= before + 50),
    )
    .await;
    assert_eq!(app.get("/readyz").await.status, 200);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let tally = std::mem::take(&mut *tally.lock().unwrap());

    let db = &app.db;
    let codes: HashSet<String> = db
        .texts("SELECT email FROM codes")
        .await
        .into_iter()
        .collect();
    let mailed: HashSet<String> = db
        .texts("SELECT DISTINCT recipient FROM outbox WHERE kind = 'register'")
        .await
        .into_iter()
        .collect();
    let lost: Vec<&String> = tally
        .accepted
        .iter()
        .filter(|a| !codes.contains(*a))
        .collect();
    println!(
        "PostgreSQL restart under load: {} accepted, {} x 503, {} others; {} codes, {} mailed, \
         {} codes without a mail, {} mails without a code, {} accepted but lost",
        tally.accepted.len(),
        tally.unavailable,
        tally.other.len(),
        codes.len(),
        mailed.len(),
        codes.difference(&mailed).count(),
        mailed.difference(&codes).count(),
        lost.len()
    );
    assert!(tally.other.is_empty(), "only 202 or 503: {:?}", tally.other);
    assert_eq!(
        codes, mailed,
        "every code has its mail and every mail its code"
    );
    assert!(lost.is_empty(), "a 202 is durable: {lost:?}");
}
