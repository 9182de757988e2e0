//! The built-in challenge: `send-code` answers 428 until a proof of work or
//! a picture is solved; each challenge works once, on any instance, for
//! 120 s. The work is solved here with the `sha2` crate directly, by the
//! contract's rule, not with authmail's own code.

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::api::Reply;
use crate::support::app::{Builder, TestApp};
use crate::support::db::TestDb;

const SECRET: &str = "challenge-test-secret-0123456789abcdef";

fn app(mode: &str) -> Builder {
    TestApp::builder().no_limits().envs(&[
        ("CHALLENGE", mode),
        ("CHALLENGE_BITS", "12"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
        ("SECRET_KEY", SECRET),
    ])
}

async fn send(app: &TestApp, email: &str, ip: &str, challenge: Option<Value>) -> Reply {
    let mut body = json!({"email": email, "purpose": "register"});
    if let Some(c) = challenge {
        body["challenge"] = c;
    }
    let from = [("x-forwarded-for", ip)];
    app.request("POST", "/api/auth/send-code", Some(&body), &from)
        .await
}

fn answer(r: &Reply) -> (u16, &str) {
    (r.status, r.error_code())
}

/// A fresh proof of work, solved: `{"id", "nonce"}`.
pub async fn solved(app: &TestApp) -> Value {
    let c = app.get("/api/auth/challenge").await;
    assert_eq!(c.status, 200, "{}", c.raw);
    assert_eq!(c.body["algorithm"], "sha256");
    assert_eq!(c.body["expires_in"], 120);
    let (salt, bits) = (
        c.body["salt"].as_str().unwrap(),
        c.body["bits"].as_u64().unwrap(),
    );
    let nonce = (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| zero_bits(&Sha256::digest(format!("{salt}{nonce}"))) >= bits as u32)
        .unwrap();
    json!({"id": c.body["id"], "nonce": nonce})
}

fn zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

#[tokio::test]
async fn always_needs_a_solved_work_and_each_works_once() {
    let app = app("always").manual_clock().start().await;
    let r = send(&app, "a@example.com", "198.51.100.1", None).await;
    assert_eq!(answer(&r), (428, "challenge_required"), "{}", r.raw);
    assert_eq!(
        app.db.int("SELECT COUNT(*) FROM code_requests").await,
        0,
        "a 428 counts nowhere"
    );

    let solution = solved(&app).await;
    let r = send(
        &app,
        "a@example.com",
        "198.51.100.1",
        Some(solution.clone()),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    // Replayed: used up, whoever sends it.
    let r = send(&app, "b@example.com", "203.0.113.9", Some(solution)).await;
    assert_eq!(answer(&r), (428, "challenge_required"));

    // A wrong nonce uses the challenge up too.
    let mut wrong = solved(&app).await;
    let right = wrong["nonce"].clone();
    wrong["nonce"] = json!("not-the-nonce");
    assert_eq!(
        answer(&send(&app, "c@example.com", "198.51.100.1", Some(wrong.clone())).await).0,
        428
    );
    wrong["nonce"] = right;
    assert_eq!(
        answer(&send(&app, "c@example.com", "198.51.100.1", Some(wrong)).await).0,
        428
    );

    // Past 120 s: expired.
    let late = solved(&app).await;
    app.clock().advance(120);
    let r = send(&app, "d@example.com", "198.51.100.1", Some(late)).await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    // An unknown id, and junk in place of a solution.
    for junk in [
        json!({"id": "nope", "nonce": "1"}),
        json!({"id": "x"}),
        json!({"id": "x", "nonce": "1", "answer": "2"}),
    ] {
        let r = send(&app, "e@example.com", "198.51.100.1", Some(junk.clone())).await;
        assert_eq!(answer(&r), (428, "challenge_required"), "{junk}");
    }
    assert_eq!(
        app.db.int("SELECT COUNT(*) FROM outbox").await,
        1,
        "one mail: the one solved send"
    );
}

#[tokio::test]
async fn the_default_difficulty_is_eighteen_bits_and_solvable() {
    let app = TestApp::builder()
        .no_limits()
        .env("CHALLENGE", "always")
        .start()
        .await;
    let c = app.get("/api/auth/challenge").await;
    assert_eq!(c.body["bits"], 18);
    let started = std::time::Instant::now();
    let solution = solved(&app).await;
    println!(
        "proof of work at 18 bits solved natively in {:?}",
        started.elapsed()
    );
    let r = send(&app, "f@example.com", "127.0.0.1", Some(solution)).await;
    assert_eq!(r.status, 202, "{}", r.raw);
}

/// The picture's digits are kept only as a keyed hash: the test, knowing the
/// secret key, reads them back by trying every five-digit string, as a person
/// would read the picture.
#[tokio::test]
async fn a_picture_is_answered_once_with_its_digits() {
    let app = app("always").start().await;
    let keys = authmail::keys::Keys::new(SECRET);
    let read = |id: &str, stored: &[u8]| {
        (11111..=99999)
            .map(|n: u32| n.to_string())
            .find(|digits| keys.challenge_answer_hash(id, digits)[..] == *stored)
            .expect("five digits 1-9")
    };
    let id = picture(&app).await;
    let sql = format!("SELECT answer_hash FROM challenges WHERE id = '{id}'");
    let stored: Vec<u8> = app.db.blobs(&sql).await.remove(0);
    let digits = read(&id, &stored);
    let r = send(
        &app,
        "g@example.com",
        "127.0.0.1",
        Some(json!({"id": id, "answer": digits})),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    // One guess per picture: a wrong answer spends it.
    let id = picture(&app).await;
    let stored: Vec<u8> = app
        .db
        .blobs(&format!(
            "SELECT answer_hash FROM challenges WHERE id = '{id}'"
        ))
        .await
        .remove(0);
    let digits = read(&id, &stored);
    let wrong = if digits == "11111" { "22222" } else { "11111" };
    let r = send(
        &app,
        "h@example.com",
        "127.0.0.1",
        Some(json!({"id": id, "answer": wrong})),
    )
    .await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    let r = send(
        &app,
        "h@example.com",
        "127.0.0.1",
        Some(json!({"id": id, "answer": digits})),
    )
    .await;
    assert_eq!(
        answer(&r),
        (428, "challenge_required"),
        "the right answer after a wrong one"
    );
    // A proof of work is no answer to a picture.
    let id = picture(&app).await;
    let r = send(
        &app,
        "i@example.com",
        "127.0.0.1",
        Some(json!({"id": id, "nonce": "1"})),
    )
    .await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    let r = app.get("/api/auth/challenge?kind=riddle").await;
    assert_eq!(answer(&r), (400, "invalid_request"));
}

/// A new picture challenge's id.
async fn picture(app: &TestApp) -> String {
    let c = app.get("/api/auth/challenge?kind=image").await;
    assert_eq!(c.status, 200, "{}", c.raw);
    let image = c.body["image"].as_str().unwrap();
    assert!(
        image.starts_with("data:image/png;base64,iVBOR"),
        "{image:.40}"
    );
    assert!(c.body.get("salt").is_none(), "{}", c.raw);
    c.body["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn auto_asks_a_busy_network_and_everyone_over_half_the_cap() {
    let app = app("auto")
        .envs(&[("CHALLENGE_AFTER", "2"), ("RATE_GLOBAL_PER_HOUR", "8")])
        .start()
        .await;
    // Two from one /24, then that network must solve; its neighbour need not.
    for ip in ["198.51.100.7", "198.51.100.8"] {
        assert_eq!(
            send(&app, &format!("n{ip}@example.com"), ip, None)
                .await
                .status,
            202
        );
    }
    let r = send(&app, "n3@example.com", "198.51.100.200", None).await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    let r = send(
        &app,
        "n3@example.com",
        "198.51.100.200",
        Some(solved(&app).await),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    assert_eq!(
        send(&app, "n4@example.com", "198.51.101.1", None)
            .await
            .status,
        202
    );
    // Four of eight is half: still free. The fifth is over half, and from
    // then on everyone must solve.
    assert_eq!(
        send(&app, "n5@example.com", "203.0.113.1", None)
            .await
            .status,
        202
    );
    let r = send(&app, "n6@example.com", "192.0.2.1", None).await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    let r = send(
        &app,
        "n6@example.com",
        "192.0.2.1",
        Some(solved(&app).await),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.raw);
}

/// A challenge from one instance is redeemed on another, once.
#[tokio::test]
async fn multi_instance_challenges_are_single_use_across_instances() {
    let db = TestDb::postgres().await;
    let a = app("always").db(TestDb::at(&db.url())).start().await;
    let b = app("always").db(TestDb::at(&db.url())).start().await;
    let solution = solved(&a).await;
    assert_eq!(
        send(&b, "x@example.com", "127.0.0.1", Some(solution.clone()))
            .await
            .status,
        202
    );
    let r = send(&a, "y@example.com", "127.0.0.1", Some(solution)).await;
    assert_eq!(answer(&r), (428, "challenge_required"));
}

/// The botnet of the issue: 10,000 send-codes to strangers from 1,000 client
/// networks through the trusted proxy, with the defaults (`CHALLENGE=auto`,
/// `RATE_GLOBAL_PER_HOUR=1000`). Few mails leave; every other request is
/// answered 428 or 429; a real user on a fresh network who solves the
/// challenge still gets a code.
#[tokio::test]
async fn a_botnet_burns_neither_strangers_nor_the_quota() {
    use crate::support::smtp::{Certs, Mode, SmtpOptions, SmtpServer};
    use futures_util::stream::{self, StreamExt};
    let certs = Certs::generate();
    let smtp = SmtpServer::start(&certs, SmtpOptions::new(Mode::Plain));
    let app = TestApp::builder()
        .exclusive()
        .smtp(&smtp)
        .envs(&[("CHALLENGE", "auto"), ("TRUSTED_PROXIES", "127.0.0.1/32")])
        .start()
        .await;
    let started = std::time::Instant::now();
    let replies: Vec<u16> = stream::iter(0..10_000)
        .map(|i| {
            let app = &app;
            async move {
                // 1,000 networks (a /24 each), 10 stranger addresses per request slot.
                let ip = format!("10.{}.{}.{}", i % 1000 / 250, i % 250, 1 + i / 1000);
                send(app, &format!("stranger{i}@example.com"), &ip, None)
                    .await
                    .status
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let took = started.elapsed();
    let count = |s: u16| replies.iter().filter(|&&r| r == s).count();
    let (accepted, challenged, limited) = (count(202), count(428), count(429));
    let mails = smtp
        .wait_for_count(accepted, std::time::Duration::from_secs(60))
        .await
        .len();
    println!(
        "botnet: 10,000 send-codes from 1,000 networks in {took:.1?}: {accepted} accepted, \
         {challenged} answered 428, {limited} answered 429; {mails} mails at the SMTP server \
         (RATE_GLOBAL_PER_HOUR 1000)"
    );
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");
    assert_eq!(
        accepted + challenged + limited,
        10_000,
        "nothing but 202, 428 and 429"
    );
    assert!(accepted <= 1000, "{accepted} over RATE_GLOBAL_PER_HOUR");
    assert!(
        accepted <= 501,
        "over half the cap everyone must solve: {accepted}"
    );
    assert_eq!(mails, accepted, "one mail per 202");
    // A real person on a fresh network solves the challenge and gets a code.
    let r = send(&app, "real.person@example.com", "192.0.2.44", None).await;
    assert_eq!(answer(&r), (428, "challenge_required"));
    let r = send(
        &app,
        "real.person@example.com",
        "192.0.2.44",
        Some(solved(&app).await),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.raw);
    let mail = smtp
        .wait_for_mail(
            "real.person@example.com",
            std::time::Duration::from_secs(20),
        )
        .await;
    assert_eq!(mail.code().len(), 6);
}
