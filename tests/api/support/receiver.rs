//! A local HTTP receiver for the alert webhook: it keeps every JSON body it
//! gets, in order, for the test to look at.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

use super::wait::eventually;

const WAIT: Duration = Duration::from_secs(20);

/// The receiver's URL and what it has received so far.
pub async fn webhook_receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = Arc::clone(&got);
    let app = Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let store = Arc::clone(&store);
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// The first `n` (or more) bodies, once they have come.
pub async fn wait_alerts(got: &Mutex<Vec<Value>>, n: usize) -> Vec<Value> {
    eventually(WAIT, || async {
        let alerts = got.lock().unwrap().clone();
        match alerts.len() >= n {
            true => Ok(alerts),
            false => Err(format!("{} of {n} alerts: {alerts:?}", alerts.len())),
        }
    })
    .await
}
