//! The outbox workers: the only consumers of the outbox. A worker claims the
//! due rows of its lane with a lease, tries each, and records how it went:
//! sent, retry later with backoff, or failed with the reply kept. Mail
//! (`mail.rs`: SMTP or the dev mailbox) and webhook events (`webhook.rs`:
//! HTTP) each have a worker of their own, with their own claims and
//! concurrency, so a slow webhook receiver never holds up a code mail.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinSet;

mod mail;
mod tries;
mod webhook;

pub use mail::{MailLane, Sink};
pub use tries::RetryPolicy;
pub use webhook::{WebhookLane, CONCURRENCY as WEBHOOK_CONCURRENCY};

use super::transport::Delivery;
use crate::clock::Clock;
use crate::storage::{self, Channel, Claimed, Finished, Storage};

/// What one worker delivers, and how: its channel's rows, claimed, tried
/// and followed up in its own way.
pub trait Lane: Send + Sync + 'static {
    type Message: Claimed + Send + Sync + 'static;
    const CHANNEL: Channel;

    fn claim(
        &self,
        storage: &Storage,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> impl Future<Output = storage::Result<Vec<Self::Message>>> + Send;

    /// One try; `None` when the lane recorded the outcome itself (the dev mailbox).
    fn try_once(&self, msg: &Self::Message) -> impl Future<Output = Option<Delivery>> + Send;

    /// After a batch of outcomes was recorded; `ended` when one is final.
    fn recorded(&self, ended: bool) -> impl Future<Output = ()> + Send {
        let _ = ended;
        async {}
    }

    /// The worker has stopped: close what the lane keeps open.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Messages claimed per connection at a time: a claim is one database round
/// trip per several messages rather than one per message.
const CLAIM_AHEAD: usize = 16;

/// How long a claimed message may wait for a connection: the lease is the
/// send deadline plus this (`app.rs`), so a send started within it ends
/// before the lease does.
pub const LEASE_SPARE: Duration = Duration::from_secs(10);

/// A send task that panicked: its message's lease runs out and it is tried
/// again, but say so loudly.
fn log_panic(ended: Result<(), tokio::task::JoinError>) {
    if let Err(e) = ended {
        tracing::error!(error = %e, "a delivery task panicked");
    }
}

/// Most outcomes recorded in one transaction, and how long the recorder
/// waits for more before it writes.
const RECORD_BATCH: usize = 256;
const RECORD_LINGER: Duration = Duration::from_millis(2);

/// What one step of the worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing was due.
    Idle,
    /// This many messages were claimed and taken to their next state (sent,
    /// in the dev mailbox, retry later, failed, or handed back).
    Delivered(usize),
}

/// A message this worker holds the lease of, and when it took it.
struct Held<M> {
    at: Instant,
    msg: M,
}

/// One lane's worker; `Worker` alone is the mail worker.
pub struct Worker<L: Lane = MailLane> {
    pub storage: Storage,
    pub clock: Clock,
    pub retry: RetryPolicy,
    /// Most messages in flight at once (`SMTP_POOL_SIZE` for mail).
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the message.
    pub lease_secs: i64,
    pub lane: L,
}

impl<L: Lane> Worker<L> {
    /// One step: claims the due messages (a batch), delivers them with up to
    /// `concurrency` sends at once, and records how each went. Tests call it
    /// to drain the queue deterministically; `run` is the same step kept
    /// going, claiming again whenever a connection is free.
    pub async fn deliver_due(self: &Arc<Self>) -> storage::Result<Outcome> {
        let mut ready = self.claim(self.claim_size()).await?;
        if ready.is_empty() {
            return Ok(Outcome::Idle);
        }
        let count = ready.len();
        let (done, outcomes) = mpsc::unbounded_channel();
        let sending = async move {
            let mut inflight = JoinSet::new();
            self.start_sends(&mut inflight, &mut ready, &done);
            while let Some(ended) = inflight.join_next().await {
                log_panic(ended);
                self.start_sends(&mut inflight, &mut ready, &done);
            }
        };
        let ((), recorded) = tokio::join!(sending, self.record_all(outcomes));
        recorded.map(|()| Outcome::Delivered(count))
    }

    /// Runs until `shutdown` turns true, then finishes the sends in flight.
    /// Each outcome is recorded as soon as its send ends, batched with
    /// whatever else ended meanwhile, so the connections never wait for the
    /// database and a crash leaves at most the sends in flight unrecorded.
    pub async fn run(self: Arc<Self>, wake: Arc<Notify>, shutdown: watch::Receiver<bool>) {
        let (done, outcomes) = mpsc::unbounded_channel();
        // On its own task, so recording runs beside the claims and sends.
        let worker = Arc::clone(&self);
        let recorder = tokio::spawn(async move { worker.record_all(outcomes).await });
        self.deliver_until(done, wake, shutdown).await;
        match recorder.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the last delivery outcomes were not recorded")
            }
            // A panic while recording is a bug: it takes the worker down
            // (and so the app, in `App::run_until`), never vanishes.
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => tracing::error!(error = %e, "the outcome recorder was cancelled"),
            },
        }
        self.lane.shutdown().await;
    }

    /// The step in a loop: claims ahead of the free connections (one
    /// database round trip per several messages), starts sends as
    /// connections free up, and waits for a send to end, a wake-up, the
    /// next due time or shutdown.
    async fn deliver_until(
        self: &Arc<Self>,
        done: mpsc::UnboundedSender<Finished>,
        wake: Arc<Notify>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut inflight = JoinSet::new();
        let mut ready = VecDeque::new();
        while !*shutdown.borrow() {
            // `None`: all connections busy, so wait for a send to end (2 s at most).
            let mut pause = None;
            if ready.len() < self.concurrency {
                let want = self.claim_size() - ready.len();
                pause = match self.claim(want).await {
                    Ok(batch) if batch.len() == want => {
                        ready.extend(batch);
                        Some(Duration::ZERO) // There may be more due right now.
                    }
                    Ok(batch) => {
                        ready.extend(batch);
                        Some(self.until_next_due().await)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot claim outbox messages; retrying");
                        Some(Duration::from_secs(2))
                    }
                };
            }
            self.start_sends(&mut inflight, &mut ready, &done);
            if pause == Some(Duration::ZERO) && ready.len() < self.concurrency {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(ended) = inflight.join_next(), if !inflight.is_empty() => log_panic(ended),
                _ = wake.notified() => {}
                _ = tokio::time::sleep(pause.unwrap_or(Duration::from_secs(2))) => {}
            }
        }
        // Stop claiming; hand back what was claimed but not started, and let
        // what was started end (each send is bounded by its deadline).
        let now = self.clock.now();
        for c in ready {
            let _ = done.send(Finished::unclaimed(&c.msg, now));
        }
        while let Some(ended) = inflight.join_next().await {
            log_panic(ended);
        }
    }

    /// Until the next message is due (at least 50 ms, at most 2 s).
    async fn until_next_due(&self) -> Duration {
        match self.storage.next_due_at(L::CHANNEL).await {
            Ok(Some(due)) => {
                let wait = (due - self.clock.now()).clamp(0, 2);
                Duration::from_secs(wait as u64).max(Duration::from_millis(50))
            }
            _ => Duration::from_secs(2),
        }
    }

    fn claim_size(&self) -> usize {
        self.concurrency * CLAIM_AHEAD
    }

    async fn claim(&self, limit: usize) -> storage::Result<VecDeque<Held<L::Message>>> {
        let now = self.clock.now();
        let lease_until = now + self.lease_secs;
        let batch = self
            .lane
            .claim(&self.storage, now, lease_until, limit as i64)
            .await?;
        let at = Instant::now();
        Ok(batch.into_iter().map(|msg| Held { at, msg }).collect())
    }

    /// Starts sends from `ready` while fewer than `concurrency` are in
    /// flight, each on its own task (the rendering and TLS work spread over
    /// the runtime's threads); each outcome goes to `done` when known.
    fn start_sends(
        self: &Arc<Self>,
        inflight: &mut JoinSet<()>,
        ready: &mut VecDeque<Held<L::Message>>,
        done: &mpsc::UnboundedSender<Finished>,
    ) {
        while inflight.len() < self.concurrency {
            let Some(Held { at, msg }) = ready.pop_front() else {
                return;
            };
            if at.elapsed() > LEASE_SPARE {
                // Its send might outlast the lease: hand it back rather
                // than risk another instance taking it mid-send.
                let _ = done.send(Finished::unclaimed(&msg, self.clock.now()));
                continue;
            }
            let (worker, done) = (Arc::clone(self), done.clone());
            inflight.spawn(async move {
                if let Some(finished) = worker.deliver(msg).await {
                    let _ = done.send(finished);
                }
            });
        }
    }

    /// Records outcomes as they come, as many as have piled up in one
    /// transaction, until every sender is gone. An error is logged and
    /// recording goes on (the leases run out and those messages are tried
    /// again: at worst duplicates); the last one is returned.
    async fn record_all(
        &self,
        mut outcomes: mpsc::UnboundedReceiver<Finished>,
    ) -> storage::Result<()> {
        let mut result = Ok(());
        let mut batch = Vec::new();
        while outcomes.recv_many(&mut batch, RECORD_BATCH).await > 0 {
            // Let more pile up for a moment: a commit of many outcomes costs
            // about what a commit of one does (the same pages are written).
            let linger = tokio::time::sleep(RECORD_LINGER);
            tokio::pin!(linger);
            while batch.len() < RECORD_BATCH {
                let room = RECORD_BATCH - batch.len();
                tokio::select! {
                    n = outcomes.recv_many(&mut batch, room) => if n == 0 { break },
                    _ = &mut linger => break,
                }
            }
            if let Err(e) = self.record(std::mem::take(&mut batch)).await {
                tracing::error!(error = %e, "cannot record delivery outcomes");
                result = Err(e);
            }
        }
        result
    }

    async fn record(&self, finished: Vec<Finished>) -> storage::Result<()> {
        let ended = finished.iter().any(|f| f.ends());
        self.storage.record_outcomes(finished).await?;
        self.lane.recorded(ended).await;
        Ok(())
    }

    /// Takes one claimed message to its next state; what to record, unless
    /// the lane recorded it itself.
    async fn deliver(&self, msg: L::Message) -> Option<Finished> {
        let now = self.clock.now();
        if now >= msg.expires_at() {
            let reason = msg
                .last_error()
                .map_or_else(|| "not delivered before it expired".into(), str::to_string);
            return Some(self.finish(&msg, Delivery::Permanent(reason), now));
        }
        let outcome = self.lane.try_once(&msg).await?;
        Some(self.finish(&msg, outcome, self.clock.now()))
    }

    fn finish(&self, msg: &L::Message, outcome: Delivery, now: i64) -> Finished {
        let outcome = match outcome {
            Delivery::Sent(reply) => storage::Outcome::Sent { reply },
            Delivery::Permanent(error) => storage::Outcome::Failed { error },
            Delivery::Transient(error) => {
                let jitter = rand::thread_rng().gen_range(0.8..=1.2);
                let next_attempt_at = now + self.retry.delay(msg.attempts(), jitter);
                if next_attempt_at >= msg.expires_at() {
                    // A code mail stops when its code expires; other mail after a day.
                    let error = format!("{error} (no further tries: the message expires first)");
                    storage::Outcome::Failed { error }
                } else {
                    storage::Outcome::Retry {
                        error,
                        next_attempt_at,
                    }
                }
            }
        };
        Finished {
            id: msg.id(),
            attempt: msg.attempts(),
            outcome,
            at: now,
        }
    }
}
