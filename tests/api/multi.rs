//! Several instances on one PostgreSQL database behind nginx: limits, single
//! use, the attempt counter and the outbox hold exactly as for one instance.
//! PostgreSQL only (`AUTHMAIL_TEST_PG`); scripts/test runs these in its
//! PostgreSQL pass.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::support::api::{into_reply, Reply};
use crate::support::app::{Builder, TestApp};
use crate::support::db::TestDb;
use crate::support::nginx::Nginx;
use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};
use crate::support::wait::eventually;
use futures_util::stream::{self, StreamExt};
use serde_json::json;

struct Cluster {
    db: TestDb,
    apps: Vec<TestApp>,
    lb: Nginx,
    smtp: SmtpServer,
    _certs: Certs,
    client: reqwest::Client,
}

/// One of several instances sharing the PostgreSQL database `db`, behind
/// nginx and mailing through the plain SMTP server at `smtp_port`. Real
/// processes: the tests kill one and read their logs.
fn instance(db: &TestDb, smtp_port: u16) -> Builder {
    TestApp::builder()
        .process()
        .db(TestDb::at(&db.url()))
        .admin()
        .envs(&[
            ("SMTP_SERVER", "127.0.0.1"),
            ("SMTP_SECURITY", "none"),
            ("SMTP_FROM", "noreply@authmail.test"),
            ("TRUSTED_PROXIES", "127.0.0.1/32"),
            ("SMTP_PORT", &smtp_port.to_string()),
        ])
}

/// Three instances; `settings` adds to each one's.
async fn cluster(settings: fn(Builder) -> Builder) -> Cluster {
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::Plain));
    let db = TestDb::postgres().await;
    let mut apps = Vec::new();
    for _ in 0..3 {
        apps.push(settings(instance(&db, smtp.port)).start().await);
    }
    let lb = Nginx::start(&apps.iter().map(|a| a.port).collect::<Vec<_>>(), &certs);
    let client = lb.client.clone();
    Cluster {
        db,
        apps,
        lb,
        smtp,
        _certs: certs,
        client,
    }
}

impl Cluster {
    /// A send-code through the load balancer from client address `ip`.
    async fn send_code(&self, email: &str, ip: &str) -> Reply {
        let req = self
            .client
            .post(format!("{}/api/auth/send-code", self.lb.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", ip)
            .body(json!({"email": email, "purpose": "register"}).to_string());
        into_reply(req.send().await.expect("request through nginx")).await
    }

    /// Runs `jobs` send-codes 64 at a time; returns each job with its status.
    async fn send_many(&self, jobs: Vec<(String, String)>) -> Vec<(String, String, u16)> {
        stream::iter(jobs)
            .map(|(email, ip)| async move {
                let status = self.send_code(&email, &ip).await.status;
                (email, ip, status)
            })
            .buffer_unordered(64)
            .collect()
            .await
    }

    async fn wait_drained(&self, timeout: Duration) {
        eventually(timeout, || async {
            let stats = self.apps[0].admin("/api/admin/stats").await;
            match stats.body["queued"] == 0 {
                true => Ok(()),
                false => Err(format!("outbox not drained: {}", stats.raw)),
            }
        })
        .await
    }

    fn assert_each_message_id_once(&self, expected: usize) {
        let mails = self.smtp.messages();
        let ids: HashSet<String> = mails
            .iter()
            .map(|m| m.header("message-id").expect("Message-ID").to_string())
            .collect();
        assert_eq!(mails.len(), expected, "messages at the SMTP server");
        assert_eq!(ids.len(), expected, "every Message-ID exactly once");
    }
}

fn count_accepted(
    results: &[(String, String, u16)],
    key: impl Fn(&(String, String, u16)) -> String,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in results.iter().filter(|r| r.2 == 202) {
        *counts.entry(key(r)).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn multi_instance_limits_hold_exactly_across_three_instances() {
    let c = cluster(|app| {
        app.envs(&[
            ("RESEND_COOLDOWN_SECS", "0"),
            ("RATE_EMAIL_PER_HOUR", "5"),
            ("RATE_IP_PER_HOUR", "30"),
        ])
    })
    .await;

    // 1000 requests for 50 addresses, each from its own client address:
    // only the per-address limit can bind.
    let jobs = (0..1000)
        .map(|i| {
            (
                format!("a{}@example.com", i % 50),
                format!("198.18.{}.{}", i / 250, i % 250),
            )
        })
        .collect();
    let a = c.send_many(jobs).await;
    assert!(
        a.iter().all(|r| r.2 == 202 || r.2 == 429),
        "only 202 or 429"
    );
    let per_address = count_accepted(&a, |r| r.0.clone());
    assert_eq!(per_address.len(), 50);
    assert!(per_address.values().all(|n| *n == 5), "{per_address:?}");

    // 600 requests from 10 client addresses, each for its own address:
    // only the per-IP limit can bind.
    let jobs = (0..600)
        .map(|i| (format!("b{i}@example.com"), format!("198.19.0.{}", i % 10)))
        .collect();
    let b = c.send_many(jobs).await;
    let per_ip = count_accepted(&b, |r| r.1.clone());
    assert_eq!(per_ip.len(), 10);
    assert!(per_ip.values().all(|n| *n == 30), "{per_ip:?}");

    c.smtp.wait_for_count(550, Duration::from_secs(120)).await;
    c.wait_drained(Duration::from_secs(60)).await;
    c.assert_each_message_id_once(550);
}

#[tokio::test]
async fn multi_instance_two_thousand_mails_each_arrive_once() {
    let c = cluster(Builder::no_limits).await;
    let started = Instant::now();
    let jobs = (0..2000)
        .map(|i| (format!("m{i}@example.com"), "198.20.0.1".to_string()))
        .collect();
    let results = c.send_many(jobs).await;
    assert!(results.iter().all(|r| r.2 == 202));
    c.smtp.wait_for_count(2000, Duration::from_secs(300)).await;
    c.wait_drained(Duration::from_secs(60)).await;
    c.assert_each_message_id_once(2000);
    // Every instance's worker took part.
    for app in &c.apps {
        let sent = app
            .logs()
            .lines()
            .filter(|l| l.contains("\"outcome\":\"sent\""))
            .count();
        assert!(sent > 0, "an instance whose worker sent nothing");
    }
    eprintln!(
        "2000 mails accepted and delivered through 3 instances in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn multi_instance_one_right_code_wins_once_and_guesses_are_counted_globally() {
    let c = cluster(|app| app).await;
    assert_eq!(
        c.send_code("win@example.com", "198.21.0.1").await.status,
        202
    );
    let code = c
        .smtp
        .wait_for_mail("win@example.com", Duration::from_secs(20))
        .await
        .code();
    let tries = (0..12).map(|i| {
        let app = &c.apps[i % 3];
        let code = &code;
        async move {
            app.register("win@example.com", &format!("password {i}"), code)
                .await
        }
    });
    let replies = futures_util::future::join_all(tries).await;
    assert_eq!(
        replies.iter().filter(|r| r.status == 201).count(),
        1,
        "{:?}",
        replies.iter().map(|r| &r.raw).collect::<Vec<_>>()
    );

    assert_eq!(
        c.send_code("guess@example.com", "198.21.0.2").await.status,
        202
    );
    let right = c
        .smtp
        .wait_for_mail("guess@example.com", Duration::from_secs(20))
        .await
        .code();
    let n: u32 = right.parse().unwrap();
    let guesses = (0..30u32).map(|i| {
        let app = &c.apps[i as usize % 3];
        let wrong = format!("{:06}", (n + 1 + i) % 1_000_000);
        async move {
            app.register("guess@example.com", "password guess", &wrong)
                .await
        }
    });
    let replies = futures_util::future::join_all(guesses).await;
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.error_code() == "invalid_code")
            .count(),
        5,
        "CODE_MAX_ATTEMPTS evaluated, no more"
    );
    assert_eq!(
        replies
            .iter()
            .filter(|r| r.error_code() == "too_many_attempts")
            .count(),
        25
    );
    let r = c.apps[1]
        .register("guess@example.com", "password guess", &right)
        .await;
    assert_eq!(r.error_code(), "too_many_attempts");
    drop(c.db);
}

#[tokio::test]
async fn multi_instance_a_killed_instances_claims_are_taken_over_after_the_lease() {
    let certs = Certs::generate();
    let good = SmtpServer::start(&certs, SmtpOptions::new(Mode::Plain));
    let silent = SmtpServer::start(&certs, SmtpOptions::new(Mode::Silent));
    let db = TestDb::postgres().await;
    // Instance A's SMTP server never greets: its sends hang for the timeout,
    // long enough to kill it while it holds its claims.
    let mut a = instance(&db, silent.port)
        .env("SMTP_TIMEOUT_SECS", "3")
        .start()
        .await;
    for i in 0..3 {
        assert_eq!(
            a.send_code(&format!("lease{i}@example.com"), "register")
                .await
                .status,
            202
        );
    }
    eventually(Duration::from_secs(10), || async {
        let r = a.admin("/api/admin/outbox?status=sending").await;
        match r.body["messages"].as_array().map_or(0, |m| m.len()) == 3 {
            true => Ok(()),
            false => Err(format!("A never claimed the messages: {}", r.raw)),
        }
    })
    .await;
    a.kill9();

    let b = instance(&db, good.port).start().await;
    let _c = instance(&db, good.port).start().await;
    for i in 0..3 {
        let to = format!("lease{i}@example.com");
        good.wait_for_mail(&to, Duration::from_secs(60)).await;
        let m = b
            .wait_outbox(&to, |m| m["status"] == "sent", Duration::from_secs(10))
            .await;
        assert_eq!(
            m["attempts"], 2,
            "claimed by A (1), taken over after the lease (2): {m}"
        );
    }
    assert_eq!(good.messages().len(), 3, "each exactly once");
}
