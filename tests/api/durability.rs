//! Durability: `kill -9` and restart at random moments while code mails flow to
//! a real SMTP server that goes down and comes back. Afterwards every accepted
//! message is `sent` or `failed` with a reason, none is missing at the server,
//! duplicates are counted (only a crash between the 250 and the commit may
//! make one), and nothing is left in `sending`.
//!
//! The CI run is short; the full one is on demand:
//! `DURABILITY_CYCLES=100 DURABILITY_MAILS=10000 DURABILITY_PACE_MS=5 cargo test --test durability -- --nocapture`

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::app::TestApp;
use crate::support::db::TestDb;
use crate::support::smtp::{free_port, Certs, Mode, SmtpOptions, SmtpServer};
use crate::support::wait::eventually;
use rand::Rng;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: a number")))
        .unwrap_or(default)
}

/// Sends code requests for fresh addresses until `stop`, recording the ones
/// answered 202. Requests that meet a dead process fail and are not accepted.
async fn produce(
    base: String,
    first: usize,
    step: usize,
    total: usize,
    pace: Duration,
    accepted: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> usize {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tried = 0;
    let mut i = first;
    while i < total && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let to = format!("d{i}@example.com");
        let r = client
            .post(format!("{base}/api/auth/send-code"))
            .header("content-type", "application/json")
            .body(format!(r#"{{"email":"{to}","purpose":"register"}}"#))
            .send()
            .await;
        tried += 1;
        match r {
            Ok(r) if r.status() == 202 => {
                accepted.lock().unwrap().push(to);
                i += step;
                tokio::time::sleep(pace).await;
            }
            // Down (refused or reset mid-request) or 503 while it starts: try
            // the same address again shortly.
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    tried
}

#[tokio::test]
async fn kill_9_cycles_lose_no_mail() {
    let cycles = setting("DURABILITY_CYCLES", 8);
    let mails = setting("DURABILITY_MAILS", 100_000);
    let pace = Duration::from_millis(setting("DURABILITY_PACE_MS", 15) as u64);
    let certs = Certs::generate();
    let port = free_port();
    let mut servers = vec![SmtpServer::start_on_port(
        &certs,
        SmtpOptions::new(Mode::Plain),
        port,
    )];
    let mut app = TestApp::builder()
        .process()
        .exclusive()
        .no_limits()
        .envs(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_PORT", &port.to_string()),
            ("SMTP_SECURITY", "none"),
            ("SMTP_FROM", "noreply@authmail.test"),
            ("SMTP_TIMEOUT_SECS", "1"),
            ("CODE_TTL_SECS", "3600"),
        ])
        .start()
        .await;
    // A pool of its own: the app restarts under it.
    let db = TestDb::at(&app.db.url());

    let accepted = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producers: Vec<_> = (0..2)
        .map(|n| {
            tokio::spawn(produce(
                app.base.clone(),
                n,
                2,
                mails,
                pace,
                Arc::clone(&accepted),
                Arc::clone(&stop),
            ))
        })
        .collect();

    let started = Instant::now();
    let mut smtp_down = false;
    let mut stuck_seen = 0;
    for cycle in 0..cycles {
        let pause = rand::thread_rng().gen_range(50..600);
        tokio::time::sleep(Duration::from_millis(pause)).await; // a random moment, not a wait for anything
        app.kill9();
        // The SMTP server goes down every third cycle and comes back on the next.
        if cycle % 3 == 1 && !smtp_down {
            servers.last_mut().unwrap().stop();
            smtp_down = true;
        } else if smtp_down {
            servers.push(SmtpServer::start_on_port(
                &certs,
                SmtpOptions::new(Mode::Plain),
                port,
            ));
            smtp_down = false;
        }
        // Claims of earlier runs that ran out and were not yet taken again.
        let now = authmail::clock::Clock::system().now();
        stuck_seen += db
            .int(&format!(
                "SELECT COUNT(*) FROM outbox WHERE status = 'sending' AND lease_until < {}",
                now - 2
            ))
            .await;
        app.restart().await;
    }
    if smtp_down {
        servers.push(SmtpServer::start_on_port(
            &certs,
            SmtpOptions::new(Mode::Plain),
            port,
        ));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut tried = 0;
    for p in producers {
        tried += p.await.unwrap();
    }
    let accepted: Vec<String> = accepted.lock().unwrap().clone();

    // Drain: every row final, without another restart.
    eventually(Duration::from_secs(120), || async {
        let open = db
            .int("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
            .await;
        if open == 0 {
            return Ok(());
        }
        let logs = app.logs();
        let tail: Vec<&str> = logs.lines().rev().take(20).collect();
        Err(format!(
            "{open} messages never became final:\n{}",
            tail.join("\n")
        ))
    })
    .await;

    let rows = db.int("SELECT COUNT(*) FROM outbox").await;
    let sent = db
        .int("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
        .await;
    let failed = db
        .int("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
        .await;
    let failed_without_reason = db
        .int("SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND (last_error IS NULL OR last_error = '')")
        .await;
    let mut at_server: HashMap<String, usize> = HashMap::new();
    for s in &servers {
        for m in s.messages() {
            for r in m.rcpt_tos {
                *at_server.entry(r).or_default() += 1;
            }
        }
    }
    let mut sent_to: HashMap<String, usize> = HashMap::new();
    let mut rows_to: HashSet<String> = HashSet::new();
    for line in db
        .texts("SELECT recipient || ' ' || status FROM outbox")
        .await
    {
        let (to, status) = line.split_once(' ').unwrap();
        rows_to.insert(to.to_string());
        if status == "sent" {
            *sent_to.entry(to.to_string()).or_default() += 1;
        }
    }
    let missing_row: Vec<&String> = accepted
        .iter()
        .filter(|to| !rows_to.contains(*to))
        .collect();
    let mut missing_at_server = 0;
    let mut duplicates = 0;
    for (to, n) in &sent_to {
        let got = at_server.get(to).copied().unwrap_or(0);
        missing_at_server += n.saturating_sub(got);
        duplicates += got.saturating_sub(*n);
    }
    let unknown_at_server = at_server
        .keys()
        .filter(|to| !sent_to.contains_key(*to))
        .count();
    let accepted_set: HashSet<&String> = accepted.iter().collect();
    let unacknowledged = rows as usize - accepted_set.len();
    println!(
        "durability: {cycles} kill -9 cycles in {:.1} s, {} SMTP server lives; {tried} requests, \
         {} accepted (202), {unacknowledged} more committed but cut off before the answer; \
         outbox {rows}: {sent} sent, {failed} failed ({failed_without_reason} without a reason); \
         at the server {} recipients, {duplicates} duplicates; missing rows {}, missing at the server {}; \
         claims found past their lease at a crash {stuck_seen}",
        started.elapsed().as_secs_f64(),
        servers.len(),
        accepted.len(),
        at_server.len(),
        missing_row.len(),
        missing_at_server
    );
    assert!(accepted.len() >= 50, "enough mail flowed to mean something");
    assert!(
        missing_row.is_empty(),
        "accepted but not in the outbox: {missing_row:?}"
    );
    assert_eq!(sent + failed, rows, "every message is final");
    assert_eq!(failed_without_reason, 0);
    assert_eq!(missing_at_server, 0, "marked sent but never received");
    assert_eq!(unknown_at_server, 0, "received but not marked sent");
    // Only the sends in flight at a crash (at most SMTP_POOL_SIZE, 4) can
    // have reached the server without their commit: killed after the final
    // dot, the server still takes the message.
    assert!(
        duplicates <= cycles * 4,
        "at most the in-flight sends per crash: {duplicates}"
    );
}
