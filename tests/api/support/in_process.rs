//! The app built in this test process with `App::builder`, on a runtime and a
//! thread of its own: a test that blocks its own thread (a raw socket, a child
//! process) cannot stall the server, and the server's tasks cannot outlive the
//! test. Its clock can be manual, and its outbox worker can be left for the
//! test to step (`deliver_due`), so nothing about time or the queue is left to
//! chance.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use authmail::app::App;
use authmail::clock::Clock;
use authmail::config::{Settings, Source};
use authmail::mail::outbox::{WebhookLane, Worker};
use tokio::sync::oneshot;

/// How long a stopped app may take to finish the sends in flight.
const STOP_WITHIN: Duration = Duration::from_secs(20);

/// A change to the settings that no environment variable can make.
pub type Adjust = Box<dyn Fn(&mut Settings) + Send + Sync>;

pub struct InProcess {
    settings: HashMap<String, String>,
    adjust: Option<Adjust>,
    pub clock: Clock,
    background_worker: bool,
    running: Option<Running>,
}

/// One run: the thread serving it and how to stop it.
struct Running {
    stop: oneshot::Sender<()>,
    stopped: mpsc::Receiver<()>,
    thread: std::thread::JoinHandle<()>,
    worker: Arc<Worker>,
    webhook_worker: Option<Arc<Worker<WebhookLane>>>,
}

impl InProcess {
    pub fn new(
        settings: HashMap<String, String>,
        adjust: Option<Adjust>,
        clock: Clock,
        background_worker: bool,
    ) -> InProcess {
        InProcess {
            settings,
            adjust,
            clock,
            background_worker,
            running: None,
        }
    }

    /// Builds the app on `addr` (port 0 the first time, the same port on a
    /// restart) and returns the address it serves on once it is built: the
    /// database is open and migrated, the listener bound.
    pub async fn start(&mut self, addr: SocketAddr) -> SocketAddr {
        assert!(self.running.is_none(), "already running");
        let listener = std::net::TcpListener::bind(addr).expect("bind the test app's port");
        listener.set_nonblocking(true).unwrap();
        let bound = listener.local_addr().unwrap();
        // `BIND` as the binary would have it: the public URL and the pages'
        // same-origin check follow from it.
        let mut settings = self.settings.clone();
        settings.insert("BIND".into(), bound.to_string());
        let mut settings = Settings::from_source(&Source::from_map(settings))
            .unwrap_or_else(|e| panic!("{}", e.render(Default::default())));
        if let Some(adjust) = &self.adjust {
            adjust(&mut settings);
        }
        let (built_tx, built_rx) = oneshot::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = mpsc::channel();
        let (clock, background_worker) = (self.clock.clone(), self.background_worker);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let mut builder = App::builder(settings).clock(clock);
                if !background_worker {
                    builder = builder.without_worker();
                }
                let app = match builder.build(listener).await {
                    Ok(app) => app,
                    Err(e) => return drop(built_tx.send(Err(format!("{e:#}")))),
                };
                let _ = built_tx.send(Ok((app.worker(), app.webhook_worker())));
                let ended = app.run_until(async { drop(stop_rx.await) }).await;
                ended.expect("the in-process app failed");
            });
            runtime.shutdown_timeout(Duration::from_secs(5));
            let _ = stopped_tx.send(());
        });
        let (worker, webhook_worker) = match built_rx.await {
            Ok(Ok(workers)) => workers,
            Ok(Err(e)) => panic!("the in-process app did not build: {e}"),
            Err(_) => panic!("the in-process app's thread ended before it was built"),
        };
        self.running = Some(Running {
            stop,
            stopped,
            thread,
            worker,
            webhook_worker,
        });
        bound
    }

    /// The running app's outbox worker.
    pub fn worker(&self) -> Arc<Worker> {
        Arc::clone(&self.running.as_ref().expect("running").worker)
    }

    /// The running app's webhook worker (`WEBHOOK_URL` set).
    pub fn webhook_worker(&self) -> Arc<Worker<WebhookLane>> {
        let running = self.running.as_ref().expect("running");
        let worker = running.webhook_worker.as_ref();
        Arc::clone(worker.expect("start the app with WEBHOOK_URL to step its webhook worker"))
    }

    /// Shuts the app down as SIGTERM would (the sends in flight end) and
    /// waits for it, so that its port and database are free again.
    pub fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        let _ = running.stop.send(());
        match running.stopped.recv_timeout(STOP_WITHIN) {
            // Disconnected: the thread ended by a panic, which `join` returns.
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                if let Err(panic) = running.thread.join() {
                    // A failure of the app fails the test that ran it, unless
                    // that test is already failing.
                    if !std::thread::panicking() {
                        std::panic::resume_unwind(panic);
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) if std::thread::panicking() => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("the in-process app did not stop within {STOP_WITHIN:?}")
            }
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
