//! The app as a value: [`App`] is built from settings and a bound listener
//! (the shared state, the outbox worker, the metrics listener), then runs the
//! server and the worker side by side until a shutdown future completes:
//! SIGTERM or Ctrl-C for `authmail serve`, whatever a test chooses for tests.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::{JoinError, JoinHandle};

use crate::api::{self, AppState};
use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::Lang;
use crate::http_server;
use crate::jwt::Jwt;
use crate::keys::Keys;
use crate::mail::alert::AlertHook;
use crate::mail::outbox::{WebhookLane, Worker};
use crate::mail::templates::Templates;
use crate::messages::CliText;
use crate::routes::Routes;
use crate::storage::Storage;
use crate::webhooks::Webhooks;
use wiring::{build_state, build_webhook_worker, build_worker};

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

/// `authmail serve`: binds `BIND`, builds the app and runs it until SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings, templates: Templates, lang: Lang) -> anyhow::Result<()> {
    let started = Instant::now();
    let listener = TcpListener::bind(settings.bind)
        .await
        .with_context(|| format!("BIND: cannot listen on {}", settings.bind))?;
    let app = App::builder(settings)
        .templates(templates)
        .build(listener)
        .await?;
    announce(app.settings(), app.local_addr()?, lang, started);
    app.run_until(shutdown_signal()).await
}

/// The whole service, built and bound but not yet running: the HTTP
/// listeners, the shared state and the outbox worker.
pub struct App {
    state: AppState,
    worker: Arc<Worker>,
    /// The webhook events' worker, when `WEBHOOK_URL` is set.
    webhook_worker: Option<Arc<Worker<WebhookLane>>>,
    /// Wakes it when a flow has queued an event (`Webhooks::committed`).
    webhook_wake: Arc<Notify>,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    background_worker: bool,
}

/// How to build an [`App`]: the defaults are production's.
pub struct AppBuilder {
    settings: Settings,
    templates: Option<Templates>,
    clock: Clock,
    background_worker: bool,
}

impl AppBuilder {
    /// The mail templates; by default those of `TEMPLATES_DIR`, else the built-in ones.
    pub fn templates(mut self, templates: Templates) -> Self {
        self.templates = Some(templates);
        self
    }

    /// Where "now" comes from; the system clock by default.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// No outbox worker in the background: the caller steps it with
    /// [`Worker::deliver_due`], so nothing races a test for the queue.
    pub fn without_worker(mut self) -> Self {
        self.background_worker = false;
        self
    }

    /// Opens (and migrates) the database, builds the state and the worker,
    /// and binds `METRICS_BIND` when set; `listener` serves everything else.
    pub async fn build(self, listener: TcpListener) -> anyhow::Result<App> {
        crate::metrics::install();
        let settings = Arc::new(self.settings);
        let templates = match self.templates {
            Some(t) => t,
            None => Templates::new(settings.templates_dir.as_deref())
                .map_err(|e| anyhow::anyhow!("TEMPLATES_DIR: {e}"))?,
        };
        let (storage, keys) = open_storage(&settings).await?;
        let jwt = Jwt::new(
            storage.clone(),
            &keys,
            self.clock.clone(),
            settings.public_url.clone(),
            settings.jwt.clone(),
        );
        jwt.start().await?;
        let alert_hook = AlertHook::new(&settings.alert)?.map(Arc::new);
        let worker = build_worker(
            &settings,
            storage.clone(),
            &self.clock,
            templates,
            alert_hook.clone(),
        )?;
        let webhook_worker = build_webhook_worker(&settings, storage.clone(), &self.clock)?;
        let webhook_wake = Arc::new(Notify::new());
        let webhooks = Webhooks::new(settings.webhook.as_ref(), Arc::clone(&webhook_wake));
        let metrics_listener = match settings.http.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("METRICS_BIND: cannot listen on {addr}"))?,
            ),
            None => None,
        };
        Ok(App {
            state: build_state(
                settings, storage, keys, jwt, self.clock, alert_hook, webhooks,
            ),
            worker: Arc::new(worker),
            webhook_worker: webhook_worker.map(Arc::new),
            webhook_wake,
            listener,
            metrics_listener,
            background_worker: self.background_worker,
        })
    }
}

impl App {
    pub fn builder(settings: Settings) -> AppBuilder {
        AppBuilder {
            settings,
            templates: None,
            clock: Clock::system(),
            background_worker: true,
        }
    }

    /// Production's app: system clock, worker in the background.
    pub async fn build(settings: Settings, listener: TcpListener) -> anyhow::Result<App> {
        Self::builder(settings).build(listener).await
    }

    /// The address the main listener is bound to (port 0 resolved).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn settings(&self) -> &Settings {
        &self.state.settings
    }

    /// The app's clock: a clone moves it for the whole app when it is manual.
    pub fn clock(&self) -> &Clock {
        &self.state.clock
    }

    /// The outbox worker, to step with [`Worker::deliver_due`].
    pub fn worker(&self) -> Arc<Worker> {
        Arc::clone(&self.worker)
    }

    /// The webhook events' worker, when `WEBHOOK_URL` is set.
    pub fn webhook_worker(&self) -> Option<Arc<Worker<WebhookLane>>> {
        self.webhook_worker.clone()
    }

    /// Serves until `shutdown` completes, then lets the sends in flight end.
    /// A worker that stops on its own (a panic) stops the app too: an API that
    /// queues mail nobody sends is worse than one that is down.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let state = self.state;
        let pruner = tokio::spawn(prune_forever(state.clone(), stop_rx.clone()));
        let wake = Arc::clone(&state.outbox_wake);
        let background = self.background_worker;
        let mut worker =
            background.then(|| tokio::spawn(Arc::clone(&self.worker).run(wake, stop_rx.clone())));
        // Webhook events have a worker of their own: a slow receiver holds up no mail.
        let (hooks, hooks_wake) = (self.webhook_worker, self.webhook_wake);
        let mut webhook_worker = hooks
            .filter(|_| background)
            .map(|w| tokio::spawn(w.run(hooks_wake, stop_rx)));
        let mut ended_early = None;
        let stop = async {
            tokio::select! {
                () = shutdown => {}
                ended = join_worker(&mut worker) => ended_early = Some(ended),
                ended = join_worker(&mut webhook_worker) => ended_early = Some(ended),
            }
        };
        let metrics = self.metrics_listener.map(|listener| http_server::Listener {
            listener,
            router: api::metrics_router(state.clone()),
        });
        let settings = Arc::clone(&state.settings);
        let main = http_server::Listener {
            listener: self.listener,
            router: router(state),
        };
        http_server::serve(main, metrics, &settings.http, stop).await;
        tracing::info!("stopped taking requests; finishing the sends in flight");
        let _ = stop_tx.send(true);
        pruner.abort();
        if let Some(ended) = ended_early {
            ended.context("an outbox worker panicked")?;
            anyhow::bail!("an outbox worker stopped before shutdown")
        }
        for running in [worker, webhook_worker].into_iter().flatten() {
            running.await.context("an outbox worker panicked")?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Waits for the background worker to end; forever when there is none.
async fn join_worker(worker: &mut Option<JoinHandle<()>>) -> Result<(), JoinError> {
    match worker {
        Some(handle) => handle.await,
        None => std::future::pending().await,
    }
}

/// The main listener's router: the API's routes and the pages', one 404/405
/// for everything else, the body limit, CORS for `/api/auth/*`, the state.
fn router(state: AppState) -> axum::Router {
    let routes = routes(state.settings.dev_mailbox()).into_router();
    let cors = api::cors::Cors::new(&state.settings.browsers.cors_origins);
    api::with_fallbacks(routes)
        .layer(axum::extract::DefaultBodyLimit::max(api::MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(cors, api::cors::apply))
        .with_state(state)
}

/// Every route of the main listener: the API's (the dev mailbox's only in
/// dev mode) and the pages'.
pub fn routes(dev_mailbox: bool) -> Routes {
    api::routes(dev_mailbox).merge(crate::pages::router())
}

/// Keeps the tables bounded: expired codes, old requests and sessions, and
/// finished mail past its retention go, every few minutes, on every instance
/// (the deletes are idempotent, so several instances pruning at once is fine).
async fn prune_forever(state: AppState, mut stop: watch::Receiver<bool>) {
    const EVERY: std::time::Duration = std::time::Duration::from_secs(600);
    let retention_secs = state.settings.retention_secs;
    loop {
        if let Err(e) = state.storage.prune(state.clock.now(), retention_secs).await {
            tracing::warn!(error = %e, "pruning old rows failed; will try again");
        }
        tokio::select! {
            _ = tokio::time::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The start-up lines, in the CLI's language: where it listens (the address
/// actually bound), the public address, the database, and where mail goes.
fn announce(settings: &Settings, bound: SocketAddr, lang: Lang, started: Instant) {
    let url = &settings.public_url;
    let database = &settings.database_url;
    let ready_ms = started.elapsed().as_millis() as u64;
    let line = CliText::Listening.say(lang, &[("bound", &bound), ("url", url)]);
    tracing::info!(%bound, public_url = %url, %database, ready_ms, "{line}");
    let smtp = settings.smtp.as_ref().filter(|_| !settings.dev_mailbox());
    let Some(s) = smtp else {
        return tracing::info!("{}", CliText::DevMode.say(lang, &[("url", url)]));
    };
    let server = format!("{}:{} ({})", s.server, s.port, s.security.as_str());
    let user = s.user.as_deref().unwrap_or("-");
    let line = CliText::SmtpOut.say(lang, &[("server", &server), ("user", &user)]);
    tracing::info!(%server, user, "{line}");
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

#[cfg(test)]
mod tests;
mod wiring;
