//! Password hashing: argon2id on a pool of low-priority threads, so a login
//! flood can neither starve the async workers nor exhaust memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::domain::Password;
use crate::error::ApiError;
use crate::keys::Keys;

/// argon2id at its default parameters, which are OWASP's (19 MiB, t=2, p=1).
#[derive(Clone)]
pub(super) struct Hasher {
    pool: HashPool,
    /// How long a password check may wait: one that would wait longer answers
    /// 503 at once rather than queue (a flood then delays nobody by more).
    wait_budget: Duration,
    /// A real hash of a random password, verified against when the address is unknown.
    dummy: Arc<str>,
}

impl Hasher {
    pub(super) fn new(wait_budget: Duration) -> Self {
        let started = Instant::now();
        let dummy = hash_blocking(&Keys::new_token()).expect("argon2 with default parameters");
        Self {
            pool: HashPool::start(started.elapsed()),
            wait_budget,
            dummy: dummy.into(),
        }
    }

    /// A new password's hash. It queues however long the backlog: only a
    /// right code leads here (register, reset), and codes are rate-limited.
    pub(super) async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.pool
            .run(move || hash_blocking(password.expose()), None)
            .await?
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// Whether a password check now would wait longer than the budget.
    pub(super) fn is_full(&self) -> bool {
        self.pool.is_full(self.wait_budget)
    }

    /// `stored` is `None` for an unknown address: the dummy is checked instead.
    /// 503 `Overloaded` when the pool could not start it within the budget.
    pub(super) async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.to_string());
        let check = move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.expose().as_bytes(), &parsed)
                    .is_ok()
            })
        };
        let ok = self.pool.run(check, Some(self.wait_budget)).await?;
        Ok(ok && known)
    }
}

/// Does the work and returns how to answer: a thread marks itself idle
/// before it answers, so the next request, sent on that answer, finds it.
type HashJob = Box<dyn FnOnce() -> Box<dyn FnOnce() + Send> + Send>;

/// One thread per CPU for argon2, at the lowest priority (nice 19): a login
/// flood then uses the CPU the rest leaves idle, but barely delays the async
/// workers answering everything else. (SCHED_IDLE kept /healthz as fast but
/// can starve logins outright on a host busy with something else.) The pool's
/// size also bounds the memory: at most one 19 MiB hash per thread.
#[derive(Clone)]
struct HashPool {
    state: Arc<std::sync::Mutex<PoolState>>,
    threads: usize,
    /// Recent time of one job in microseconds (a moving average), to tell
    /// how long the backlog takes to clear.
    job_micros: Arc<AtomicU64>,
}

/// Idle threads are taken newest first, so a trickle of logins always runs on
/// the same warm thread: no login's speed depends on which thread it drew.
#[derive(Default)]
struct PoolState {
    idle: Vec<std::sync::mpsc::Sender<HashJob>>,
    backlog: std::collections::VecDeque<HashJob>,
}

impl HashPool {
    /// `job_time`: a first guess at one job's time, until some are measured.
    fn start(job_time: Duration) -> Self {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let pool = Self {
            state: Arc::default(),
            threads,
            job_micros: Arc::new(AtomicU64::new(job_time.as_micros() as u64)),
        };
        for _ in 0..threads {
            let state = Arc::clone(&pool.state);
            let job_micros = Arc::clone(&pool.job_micros);
            let (me, jobs) = std::sync::mpsc::channel::<HashJob>();
            state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .idle
                .push(me.clone());
            std::thread::Builder::new()
                .name("argon2".into())
                .spawn(move || {
                    // Linux keeps the nice value per thread; 0 is the calling thread.
                    // SAFETY: setpriority only reads its integer arguments.
                    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 19) };
                    serve_hashes(&state, &job_micros, me, jobs);
                })
                .expect("spawn an argon2 thread");
        }
        pool
    }

    /// Whether one more job would wait longer than `budget` before a thread takes it.
    fn is_full(&self, budget: Duration) -> bool {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.would_wait_too_long(&state, budget)
    }

    /// Until this job's answer: the jobs running now, the backlog and this
    /// job itself, spread over the threads, at the recent job time.
    fn would_wait_too_long(&self, state: &PoolState, budget: Duration) -> bool {
        if !state.idle.is_empty() {
            return false;
        }
        let jobs = (self.threads + state.backlog.len() + 1) as u64;
        let wait = jobs * self.job_micros.load(Ordering::Relaxed) / self.threads as u64;
        wait > budget.as_micros() as u64
    }

    /// Runs `work` on the pool. With a `budget`, a job that would wait longer
    /// than it is refused at once (503 `Overloaded`) instead of queueing.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
        budget: Option<Duration>,
    ) -> Result<T, ApiError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let done = work();
            Box::new(move || {
                let _ = reply.send(done);
            })
        });
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if budget.is_some_and(|b| self.would_wait_too_long(&state, b)) {
                return Err(ApiError::Overloaded);
            }
            match state.idle.pop() {
                Some(thread) => {
                    let _ = thread.send(job);
                }
                None => state.backlog.push_back(job),
            }
        }
        answer
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2 pool: {e}")))
    }
}

/// An argon2 thread (already on the idle stack): a job, then the backlog
/// first, else back on the idle stack to wait for a job of its own.
fn serve_hashes(
    state: &std::sync::Mutex<PoolState>,
    job_micros: &AtomicU64,
    me: std::sync::mpsc::Sender<HashJob>,
    jobs: std::sync::mpsc::Receiver<HashJob>,
) {
    let mut next = None;
    loop {
        let job = match next.take() {
            Some(job) => job,
            None => match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        let answer = job();
        record_job_time(job_micros, started.elapsed());
        {
            let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
            next = state.backlog.pop_front();
            if next.is_none() {
                state.idle.push(me.clone());
            }
        }
        answer();
    }
}

/// A moving average over about the last eight jobs: it follows a host that
/// gets busier within a few hashes, but one slow hash does not swing it.
fn record_job_time(job_micros: &AtomicU64, took: Duration) {
    let sample = took.as_micros() as u64;
    let _ = job_micros.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
        Some(avg - avg / 8 + sample / 8)
    });
}

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_login_at_a_time_always_runs_on_the_same_thread() {
        let pool = HashPool::start(Duration::from_millis(1));
        let mut threads = std::collections::HashSet::new();
        for _ in 0..20 {
            let id = pool
                .run(|| std::thread::current().id(), None)
                .await
                .unwrap();
            threads.insert(id);
        }
        assert_eq!(threads.len(), 1, "{threads:?}");
    }

    #[tokio::test]
    async fn a_burst_queues_and_every_job_ends_with_its_own_answer() {
        let pool = HashPool::start(Duration::from_millis(1));
        let jobs = (0..64).map(|i| {
            pool.run(
                move || {
                    std::thread::sleep(Duration::from_millis(2));
                    i
                },
                None,
            )
        });
        let done: Vec<i32> = futures_util::future::try_join_all(jobs).await.unwrap();
        assert_eq!(done, (0..64).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_job_that_would_wait_past_the_budget_is_refused_at_once() {
        let pool = HashPool::start(Duration::from_millis(100));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let hold = Arc::new(std::sync::Mutex::new(hold));
        // Every thread busy and 20 jobs of 100 ms queued per thread: about 2 s
        // until one more job's answer, whatever the number of CPUs.
        let jobs = pool.threads * 21;
        let mut busy = Vec::new();
        for _ in 0..jobs {
            let hold = Arc::clone(&hold);
            let pool = pool.clone();
            busy.push(tokio::spawn(async move {
                pool.run(move || hold.lock().unwrap().recv().is_ok(), None)
                    .await
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.state.lock().unwrap().backlog.len() < pool.threads * 20 {
            assert!(Instant::now() < deadline, "the backlog never filled");
            tokio::task::yield_now().await;
        }
        assert!(!pool.is_full(Duration::from_secs(60)));
        assert!(pool.is_full(Duration::from_secs(1)));
        let refused = pool.run(|| true, Some(Duration::from_secs(1))).await;
        assert!(matches!(refused, Err(ApiError::Overloaded)), "{refused:?}");
        for _ in 0..jobs {
            release.send(()).unwrap();
        }
        for job in busy {
            assert!(job.await.unwrap().unwrap());
        }
    }
}
