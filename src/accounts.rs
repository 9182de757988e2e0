//! Accounts and sessions: register, log in (password or code), reset, me,
//! log out. Password hashing is argon2id on a pool of low-priority threads,
//! so a login flood can neither starve the async workers nor exhaust memory.

use crate::clock::Clock;
use crate::codes::Codes;
use crate::config::PasswordPolicy;
use crate::domain::{EmailAddress, Lang, Password, Purpose};
use crate::error::ApiError;
use crate::keys::Keys;
use crate::mail;
use crate::storage::{
    LiveSession, MailKind, NewMessage, NewSession, PasswordGate, PasswordLimits, PasswordTry,
    Storage, User,
};
use crate::webhooks::Webhooks;

mod hash_pool;
use hash_pool::Hasher;

/// Other mail (not carrying a code) is retried for a day.
const NOTICE_RETRY_SECS: i64 = 24 * 3600;

#[derive(Clone)]
pub struct Accounts {
    storage: Storage,
    keys: Keys,
    clock: Clock,
    codes: Codes,
    hasher: Hasher,
    passwords: PasswordLimits,
    session_ttl_secs: i64,
    message_domain: String,
    /// User events for `WEBHOOK_URL`, queued by the write flows.
    webhooks: Webhooks,
}

/// A new session: its id, whose it is, the token that proves it and when it ends.
pub struct Session {
    pub id: i64,
    pub user: User,
    pub token: String,
    pub expires_at: i64,
}

impl Accounts {
    pub fn new(
        storage: Storage,
        keys: Keys,
        clock: Clock,
        codes: Codes,
        passwords: &PasswordPolicy,
        session_ttl_secs: i64,
        message_domain: String,
    ) -> Self {
        Self {
            storage,
            keys,
            clock,
            codes,
            hasher: Hasher::new(passwords.hash_wait),
            passwords: PasswordLimits {
                max_failures: passwords.max_failures,
                lock_secs: passwords.lock_secs,
                ip_per_hour: passwords.login_ip_per_hour,
            },
            session_ttl_secs,
            message_domain,
            webhooks: Webhooks::default(),
        }
    }

    /// Report changes to users to the webhook (off by default).
    pub fn with_webhooks(mut self, webhooks: Webhooks) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// The code first: an address with an account holds no register code,
    /// so it gets the same `invalid_code` as any wrong code (no oracle). A
    /// right code whose address gained an account since is 409.
    pub async fn register(
        &self,
        email: &EmailAddress,
        password: Password,
        code: &str,
    ) -> Result<Session, ApiError> {
        self.codes.verify(email, Purpose::Register, code).await?;
        let hash = self.hasher.hash(password).await?;
        let user = self
            .storage
            .create_user(email, &hash, self.clock.now(), &self.webhooks)
            .await?
            .ok_or(ApiError::EmailTaken)?;
        self.webhooks.committed();
        self.start_session(user).await
    }

    /// `ip_key`: the client's network (`limits::ip_key`), for `RATE_LOGIN_IP_PER_HOUR`.
    pub async fn login(
        &self,
        email: &EmailAddress,
        password: Password,
        ip_key: &str,
    ) -> Result<Session, ApiError> {
        // Refused before it is counted: a flood's 503 costs the address nothing.
        if self.hasher.is_full() {
            return Err(ApiError::Overloaded);
        }
        let now = self.clock.now();
        self.password_gate(email, ip_key, now).await?;
        let user = self.storage.find_user(email).await?;
        // An unknown address still costs one hash, so both answers take as long.
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let ok = self.hasher.verify(password, stored).await?;
        match user {
            Some(user) if ok => {
                self.storage.password_login_succeeded(email).await?;
                self.start_session(user).await
            }
            _ => {
                if self.passwords.ip_per_hour > 0 {
                    self.storage.password_login_failed(ip_key, now).await?;
                }
                Err(ApiError::InvalidCredentials)
            }
        }
    }

    /// The password limits, checked (and the try counted) before any hash.
    async fn password_gate(
        &self,
        email: &EmailAddress,
        ip_key: &str,
        now: i64,
    ) -> Result<(), ApiError> {
        let limits = self.passwords;
        if limits.max_failures <= 0 && limits.ip_per_hour <= 0 {
            return Ok(());
        }
        let attempt = PasswordTry {
            email: email.clone(),
            ip_key: ip_key.to_string(),
            now,
            limits,
        };
        match self.storage.begin_password_try(attempt).await? {
            PasswordGate::Open => Ok(()),
            PasswordGate::RateLimited { retry_after } => Err(ApiError::RateLimited {
                retry_after: retry_after.max(1) as u64,
            }),
            PasswordGate::Locked { retry_after } => Err(ApiError::TooManyAttempts {
                retry_after: retry_after.max(1) as u64,
            }),
        }
    }

    /// A login that cannot succeed (malformed input) still costs one hash, so
    /// its answer takes as long as any other 401.
    pub async fn reject_login(&self) -> ApiError {
        if let Ok(password) = Password::parse("not-a-password".into()) {
            if let Err(e) = self.hasher.verify(password, None).await {
                return e;
            }
        }
        ApiError::InvalidCredentials
    }

    pub async fn login_with_code(
        &self,
        email: &EmailAddress,
        code: &str,
    ) -> Result<Session, ApiError> {
        let guess = self.codes.guess(email, Purpose::Login, code)?;
        let opening = self.opening();
        let (check, live) = self.storage.login_with_code(guess, opening.row).await?;
        self.codes.judge(check)?;
        // Login codes are only issued to accounts; one deleted since reads as a bad code.
        let live = live.ok_or(ApiError::InvalidCode)?;
        Ok(opening.opened(live.session_id, live.user))
    }

    /// Every older session of the account ends; the one returned is the
    /// only one left.
    pub async fn reset_password(
        &self,
        email: &EmailAddress,
        code: &str,
        new_password: Password,
        lang: Lang,
    ) -> Result<Session, ApiError> {
        self.codes
            .verify(email, Purpose::ResetPassword, code)
            .await?;
        let user = self
            .storage
            .find_user(email)
            .await?
            .ok_or(ApiError::InvalidCode)?;
        let hash = self.hasher.hash(new_password).await?;
        let now = self.clock.now();
        let notice = NewMessage {
            message_id: mail::new_message_id(&self.message_domain, now),
            to: email.clone(),
            kind: MailKind::PasswordChanged,
            lang,
            payload: None,
            expires_at: now + NOTICE_RETRY_SECS,
        };
        let opening = self.opening();
        let id = self
            .storage
            .reset_password(user.id, &hash, notice, opening.row, now, &self.webhooks)
            .await?;
        self.webhooks.committed();
        Ok(opening.opened(id, user))
    }

    /// The live session `token` proves, and whose it is.
    pub async fn session_for_token(&self, token: &str) -> Result<LiveSession, ApiError> {
        self.storage
            .live_session(&self.keys.token_hash(token), self.clock.now())
            .await?
            .ok_or(ApiError::Unauthorized)
    }

    pub async fn user_for_token(&self, token: &str) -> Result<User, ApiError> {
        Ok(self.session_for_token(token).await?.user)
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
        let opening = self.opening();
        let id = self.storage.create_session(user.id, opening.row).await?;
        Ok(opening.opened(id, user))
    }

    /// A new token and the row that stores its hash, from now for `SESSION_TTL_SECS`.
    fn opening(&self) -> Opening {
        let token = Keys::new_token();
        let now = self.clock.now();
        let row = NewSession {
            token_hash: self.keys.token_hash(&token),
            created_at: now,
            expires_at: now + self.session_ttl_secs,
        };
        Opening { token, row }
    }
}

/// A session on its way into the database: the token for the client, the
/// row for the database.
struct Opening {
    token: String,
    row: NewSession,
}

impl Opening {
    /// The session, once stored as `id` for `user`.
    fn opened(self, id: i64, user: User) -> Session {
        Session {
            id,
            user,
            token: self.token,
            expires_at: self.row.expires_at,
        }
    }
}
