//! Accounts and sessions: register, log in (password or code), reset, me,
//! log out. Password hashing is argon2id on a pool of low-priority threads,
//! so a login flood can neither starve the async workers nor exhaust memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::clock;
use crate::codes::Codes;
use crate::domain::{EmailAddress, Lang, Password, Purpose};
use crate::error::ApiError;
use crate::keys::Keys;
use crate::mail;
use crate::storage::{MailKind, NewMessage, NewSession, Storage, User};

/// Other mail (not carrying a code) is retried for a day.
const NOTICE_RETRY_SECS: i64 = 24 * 3600;

#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    keys: Keys,
    codes: Codes,
    hasher: Hasher,
    session_ttl_secs: i64,
    message_domain: String,
}

/// A signed-in user and the token that proves it.
pub struct Session {
    pub user: User,
    pub token: String,
}

impl Accounts {
    pub fn new(
        storage: Storage,
        keys: Keys,
        codes: Codes,
        session_ttl_secs: i64,
        message_domain: String,
    ) -> Self {
        Self {
            storage,
            keys,
            codes,
            hasher: Hasher::new(),
            session_ttl_secs,
            message_domain,
        }
    }

    pub async fn register(
        &self,
        email: &EmailAddress,
        password: Password,
        code: &str,
    ) -> Result<Session, ApiError> {
        // A taken address answers 409 before the code is looked at, so the
        // person who already has an account is told to sign in instead of
        // waiting for a code that is never sent (send-code stays silent).
        // The insert below still decides a race between two registrations.
        if self.storage.find_user(email).await?.is_some() {
            return Err(ApiError::EmailTaken);
        }
        self.codes.verify(email, Purpose::Register, code).await?;
        let hash = self.hasher.hash(password).await?;
        let user = self
            .storage
            .create_user(email, &hash, clock::now())
            .await?
            .ok_or(ApiError::EmailTaken)?;
        self.start_session(user).await
    }

    pub async fn login(
        &self,
        email: &EmailAddress,
        password: Password,
    ) -> Result<Session, ApiError> {
        let user = self.storage.find_user(email).await?;
        // An unknown address still costs one hash, so both answers take as long.
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password, stored).await?;
        match user {
            Some(user) if ok => {
                self.storage.clear_failures(email).await?;
                self.start_session(user).await
            }
            _ => Err(ApiError::InvalidCredentials),
        }
    }

    /// A login that cannot succeed (malformed input) still costs one hash, so
    /// its answer takes as long as any other 401.
    pub async fn reject_login(&self) -> ApiError {
        if let Ok(password) = Password::parse("not-a-password".into()) {
            let _ = self.hasher.verify(password, None).await;
        }
        ApiError::InvalidCredentials
    }

    pub async fn login_with_code(
        &self,
        email: &EmailAddress,
        code: &str,
    ) -> Result<Session, ApiError> {
        let guess = self.codes.guess(email, Purpose::Login, code)?;
        let token = Keys::new_token();
        let session = self.new_session(&token);
        let (check, user) = self.storage.login_with_code(guess, session).await?;
        self.codes.judge(check)?;
        // Login codes are only issued to accounts; one deleted since reads as a bad code.
        let user = user.ok_or(ApiError::InvalidCode)?;
        Ok(Session { user, token })
    }

    pub async fn reset_password(
        &self,
        email: &EmailAddress,
        code: &str,
        new_password: Password,
        lang: Lang,
    ) -> Result<(), ApiError> {
        self.codes
            .verify(email, Purpose::ResetPassword, code)
            .await?;
        let user = self
            .storage
            .find_user(email)
            .await?
            .ok_or(ApiError::InvalidCode)?;
        let hash = self.hasher.hash(new_password).await?;
        let now = clock::now();
        let notice = NewMessage {
            message_id: mail::new_message_id(&self.message_domain),
            to: email.clone(),
            kind: MailKind::PasswordChanged,
            lang,
            payload: None,
            expires_at: now + NOTICE_RETRY_SECS,
        };
        self.storage
            .reset_password(user.id, &hash, notice, now)
            .await?;
        Ok(())
    }

    pub async fn user_for_token(&self, token: &str) -> Result<User, ApiError> {
        self.storage
            .session_user(&self.keys.token_hash(token), clock::now())
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        match self
            .storage
            .delete_session(&self.keys.token_hash(token))
            .await?
        {
            true => Ok(()),
            false => Err(ApiError::Unauthorized),
        }
    }

    async fn start_session(&self, user: User) -> Result<Session, ApiError> {
        let token = Keys::new_token();
        self.storage
            .create_session(user.id, self.new_session(&token))
            .await?;
        Ok(Session { user, token })
    }

    fn new_session(&self, token: &str) -> NewSession {
        let now = clock::now();
        NewSession {
            token_hash: self.keys.token_hash(token),
            created_at: now,
            expires_at: now + self.session_ttl_secs,
        }
    }
}

/// argon2id at its default parameters, which are OWASP's (19 MiB, t=2, p=1).
#[derive(Clone)]
struct Hasher {
    pool: HashPool,
    /// A real hash of a random password, verified against when the address is unknown.
    dummy: Arc<str>,
}

impl Hasher {
    fn new() -> Self {
        let dummy = hash_blocking(&Keys::new_token()).expect("argon2 with default parameters");
        Self {
            pool: HashPool::start(),
            dummy: dummy.into(),
        }
    }

    async fn hash(&self, password: Password) -> Result<String, ApiError> {
        self.pool
            .run(move || hash_blocking(password.expose()))
            .await?
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("argon2: {e}")))
    }

    /// `stored` is `None` for an unknown address: the dummy is checked instead.
    async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, ApiError> {
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy.to_string());
        let ok = self
            .pool
            .run(move || {
                PasswordHash::new(&hash).is_ok_and(|parsed| {
                    Argon2::default()
                        .verify_password(password.expose().as_bytes(), &parsed)
                        .is_ok()
                })
            })
            .await?;
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
}

/// Idle threads are taken newest first, so a trickle of logins always runs on
/// the same warm thread: no login's speed depends on which thread it drew.
#[derive(Default)]
struct PoolState {
    idle: Vec<std::sync::mpsc::Sender<HashJob>>,
    backlog: std::collections::VecDeque<HashJob>,
}

impl HashPool {
    fn start() -> Self {
        let pool = Self {
            state: Arc::default(),
        };
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        for _ in 0..threads {
            let state = Arc::clone(&pool.state);
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
                    serve_hashes(&state, me, jobs);
                })
                .expect("spawn an argon2 thread");
        }
        pool
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
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
        let answer = job();
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

fn hash_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

#[cfg(test)]
mod tests {
    use super::HashPool;

    #[tokio::test]
    async fn one_login_at_a_time_always_runs_on_the_same_thread() {
        let pool = HashPool::start();
        let mut threads = std::collections::HashSet::new();
        for _ in 0..20 {
            let id = pool.run(|| std::thread::current().id()).await.unwrap();
            threads.insert(id);
        }
        assert_eq!(threads.len(), 1, "{threads:?}");
    }

    #[tokio::test]
    async fn a_burst_queues_and_every_job_ends_with_its_own_answer() {
        let pool = HashPool::start();
        let jobs = (0..64).map(|i| {
            pool.run(move || {
                std::thread::sleep(std::time::Duration::from_millis(2));
                i
            })
        });
        let done: Vec<i32> = futures_util::future::try_join_all(jobs).await.unwrap();
        assert_eq!(done, (0..64).collect::<Vec<_>>());
    }
}
