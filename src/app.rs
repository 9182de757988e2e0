//! Builds the shared state from settings and runs the server and the worker
//! side by side until SIGTERM or Ctrl-C.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::accounts::Accounts;
use crate::api::{self, AppState};
use crate::codes::Codes;
use crate::config::Settings;
use crate::domain::Lang;
use crate::http_server;
use crate::keys::Keys;
use crate::mail::outbox::{RetryPolicy, Sink, Worker};
use crate::mail::templates::Templates;
use crate::mail::transport::{send_deadline, SmtpSender};
use crate::storage::Storage;

/// Opens the database (creating and migrating it) and settles the secret key.
pub async fn open_storage(settings: &Settings) -> anyhow::Result<(Storage, Keys)> {
    let storage = Storage::open(settings.database_url.expose(), &settings.database)
        .await
        .with_context(|| format!("cannot open the database {}", settings.database_url))?;
    storage
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    let secret = match &settings.secret_key {
        Some(key) => key.expose_secret().to_string(),
        // First start: generate one and keep it, so codes and sessions survive restarts.
        None => storage.secret_key(&Keys::generate_secret()).await?,
    };
    Ok((storage, Keys::new(&secret)))
}

/// The domain in `Message-ID`s: the sender's, or a placeholder in dev mode.
pub fn message_domain(settings: &Settings) -> String {
    settings.smtp.as_ref().map_or_else(
        || "authmail.localhost".to_string(),
        |s| s.from.domain().to_string(),
    )
}

pub async fn serve(settings: Settings, templates: Templates, lang: Lang) -> anyhow::Result<()> {
    let settings = Arc::new(settings);
    let started = std::time::Instant::now();
    crate::metrics::install();
    let (storage, keys) = open_storage(&settings).await?;
    let domain = message_domain(&settings);
    let codes = Codes::new(
        storage.clone(),
        keys.clone(),
        settings.codes.clone(),
        &settings.limits,
        domain.clone(),
    );
    let accounts = Accounts::new(
        storage.clone(),
        keys,
        codes.clone(),
        &settings.passwords,
        settings.session_ttl_secs,
        domain,
    );
    let wake = Arc::new(Notify::new());
    let worker = Arc::new(build_worker(&settings, storage.clone(), templates)?);

    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("BIND: cannot listen on {}", settings.bind))?;
    let metrics_listener = match settings.http.metrics_bind {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .with_context(|| format!("METRICS_BIND: cannot listen on {addr}"))?,
        ),
        None => None,
    };
    let state = AppState {
        settings: Arc::clone(&settings),
        storage,
        codes,
        accounts,
        outbox_wake: Arc::clone(&wake),
    };
    announce(&settings, listener.local_addr()?, lang, started);

    let (stop_tx, stop_rx) = watch::channel(false);
    let pruner = tokio::spawn(prune_forever(
        state.storage.clone(),
        settings.retention_secs,
        stop_rx.clone(),
    ));
    let worker_task = tokio::spawn(worker.run(wake, stop_rx));
    let metrics = metrics_listener.map(|listener| http_server::Listener {
        listener,
        router: api::metrics_router(state.clone()),
    });
    let main = http_server::Listener {
        listener,
        router: api::router(state),
    };
    http_server::serve(main, metrics, &settings.http, shutdown_signal()).await;
    tracing::info!("stopped taking requests; finishing the sends in flight");
    let _ = stop_tx.send(true);
    worker_task.await.context("mail worker panicked")?;
    pruner.abort();
    tracing::info!("stopped");
    Ok(())
}

/// Keeps the tables bounded: expired codes, old requests and sessions, and
/// finished mail past its retention go, every few minutes, on every instance
/// (the deletes are idempotent, so several instances pruning at once is fine).
async fn prune_forever(storage: Storage, retention_secs: i64, mut stop: watch::Receiver<bool>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    loop {
        if let Err(e) = storage.prune(crate::clock::now(), retention_secs).await {
            tracing::warn!(error = %e, "pruning old rows failed; will try again");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

fn build_worker(
    settings: &Settings,
    storage: Storage,
    templates: Templates,
) -> anyhow::Result<Worker> {
    let smtp = settings.smtp.as_ref().filter(|_| !settings.dev_mailbox());
    let (sink, concurrency, lease_secs) = match smtp {
        Some(smtp) => {
            let sender = SmtpSender::new(smtp).context("cannot set up the SMTP transport")?;
            // The lease outlives the longest possible send, so a live worker never
            // loses its claim to another mid-send.
            let lease = send_deadline(smtp.timeout).as_secs() as i64 + 10;
            (Sink::Smtp(Box::new(sender)), smtp.pool_size as usize, lease)
        }
        None => (Sink::DevMailbox, 4, 30),
    };
    Ok(Worker {
        storage: storage.clone(),
        sink,
        templates: Arc::new(templates),
        retry: RetryPolicy {
            base_secs: settings.retry_base_secs,
            max_secs: settings.retry_max_secs,
        },
        concurrency,
        lease_secs,
        code_ttl_secs: settings.codes.ttl_secs,
        public_url: settings.public_url.clone(),
        lang: settings.mail_lang,
        alerts: crate::mail::alert::Alerts::new(&settings.alert, storage)?,
    })
}

/// The start-up lines, in the CLI's language: where it listens (the address
/// actually bound), the public address, the database, and where mail goes.
fn announce(settings: &Settings, bound: SocketAddr, lang: Lang, started: std::time::Instant) {
    let url = &settings.public_url;
    let database = &settings.database_url;
    let ready_ms = started.elapsed().as_millis() as u64;
    match lang {
        Lang::ZhCn => {
            tracing::info!(%bound, public_url = %url, %database, ready_ms, "authmail 正在监听 {bound}，对外地址 {url}")
        }
        Lang::En => {
            tracing::info!(%bound, public_url = %url, %database, ready_ms, "authmail listening on {bound}, public address {url}")
        }
    }
    let smtp = settings.smtp.as_ref().filter(|_| !settings.dev_mailbox());
    let Some(s) = smtp else {
        return match lang {
            Lang::ZhCn => tracing::info!("邮件处于开发模式：不会真正发送，而是存入开发邮箱 {url}/dev/mailbox"),
            Lang::En => tracing::info!("mail is in dev mode: nothing is sent, mail is kept in the dev mailbox at {url}/dev/mailbox"),
        };
    };
    let server = format!("{}:{} ({})", s.server, s.port, s.security.as_str());
    let user = s.user.as_deref().unwrap_or("-");
    match lang {
        Lang::ZhCn => tracing::info!(%server, user, "邮件经 SMTP 发出：{server}，用户 {user}"),
        Lang::En => tracing::info!(%server, user, "mail goes out over SMTP: {server}, user {user}"),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
