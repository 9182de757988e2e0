//! The app built in-process on port 0, its worker stepped by hand and its
//! clock moved: a code works inside `CODE_TTL_SECS` and not after.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::App;
use crate::clock::Clock;
use crate::config::{Settings, Source};
use crate::mail::outbox::{Outcome, Worker};

const TTL: i64 = 300;

struct Running {
    base: String,
    client: reqwest::Client,
    clock: Clock,
    worker: Arc<Worker>,
    stop: oneshot::Sender<()>,
    served: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(db: &std::path::Path) -> Running {
    let vars = HashMap::from([
        (
            "DATABASE_URL".to_string(),
            format!("sqlite://{}", db.display()),
        ),
        ("CODE_TTL_SECS".to_string(), TTL.to_string()),
    ]);
    let settings = Settings::from_source(&Source::from_map(vars)).expect("settings");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let app = App::builder(settings)
        .clock(Clock::manual(Clock::system().now()))
        .without_worker()
        .build(listener)
        .await
        .expect("app builds");
    let (stop, stopped) = oneshot::channel();
    Running {
        base: format!("http://{}", app.local_addr().expect("bound")),
        client: reqwest::Client::new(),
        clock: app.clock().clone(),
        worker: app.worker(),
        stop,
        served: tokio::spawn(app.run_until(async {
            let _ = stopped.await;
        })),
    }
}

impl Running {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let reply = self.client.post(format!("{}{path}", self.base)).json(&body);
        let reply = reply.send().await.expect("request");
        let status = reply.status().as_u16();
        (status, reply.json().await.unwrap_or(Value::Null))
    }

    /// Asks for a register code and delivers it to the dev mailbox.
    async fn code_for(&self, email: &str) -> String {
        let body = json!({"email": email, "purpose": "register"});
        assert_eq!(self.post("/api/auth/send-code", body).await.0, 202);
        let step = self.worker.deliver_due().await.expect("worker step");
        assert_eq!(step, Outcome::Delivered(1));
        let url = format!("{}/dev/mailbox.json", self.base);
        let mailbox: Value = self
            .client
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mails = mailbox["messages"].as_array().expect("messages").iter();
        let code = mails
            .filter(|m| m["to"] == email)
            .find_map(|m| m["code"].as_str());
        code.expect("a code in the dev mailbox").to_string()
    }

    async fn register(&self, email: &str, code: &str) -> (u16, Value) {
        let body = json!({"email": email, "password": "long enough password", "code": code});
        self.post("/api/auth/register", body).await
    }
}

#[tokio::test]
async fn a_code_works_until_the_clock_passes_its_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let app = start(&dir.path().join("authmail.db")).await;
    assert_eq!(app.worker.deliver_due().await.unwrap(), Outcome::Idle);

    let code = app.code_for("in-time@example.com").await;
    app.clock.advance(TTL - 1);
    assert_eq!(app.register("in-time@example.com", &code).await.0, 201);

    let code = app.code_for("too-late@example.com").await;
    app.clock.advance(TTL + 1);
    let (status, body) = app.register("too-late@example.com", &code).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_code"))
    );

    app.stop.send(()).unwrap();
    app.served.await.unwrap().expect("the app stops cleanly");
}
