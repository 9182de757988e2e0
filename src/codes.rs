//! Issuing and checking verification codes. No HTTP here: callers pass parsed
//! domain values and get domain outcomes or the API error to answer with.

use std::sync::Arc;

use crate::client_ip::ClientIp;
use crate::clock::Clock;
use crate::config::{ChallengeMode, ChallengeSettings, CodePolicy, RateLimits};
use crate::domain::{Code, EmailAddress, Lang, Purpose};
use crate::error::ApiError;
use crate::keys::Keys;
use crate::mail;
use crate::mail::alert::{AlertHook, SendRateCap};
use crate::storage::{
    ChallengeRule, CodeCheck, CodeGuess, CodeRequest, CodeRequestOutcome, GuessLimits, MailKind,
    NewMessage, SendLimits, Storage,
};

/// How long `CODE_MAX_FAILURES` locks an address's code flows.
const LOCK_SECS: i64 = 24 * 3600;

/// A send-code request as the API and the pages parsed it.
pub struct SendRequest<'a> {
    pub email: &'a EmailAddress,
    pub purpose: Purpose,
    pub lang: Lang,
    pub client: ClientIp,
    /// It carried a challenge that it solved (`Challenges::redeem`).
    pub solved: bool,
}

#[derive(Clone)]
pub struct Codes {
    storage: Storage,
    keys: Keys,
    clock: Clock,
    policy: CodePolicy,
    limits: SendLimits,
    challenge: ChallengeRule,
    message_domain: String,
    /// Told when a request fills the global send cap.
    alerts: Option<Arc<AlertHook>>,
}

impl Codes {
    pub fn new(
        storage: Storage,
        keys: Keys,
        clock: Clock,
        policy: CodePolicy,
        limits: &RateLimits,
        challenge: &ChallengeSettings,
        message_domain: String,
    ) -> Self {
        let challenge = match challenge.mode {
            ChallengeMode::Off => ChallengeRule::Never,
            ChallengeMode::Always => ChallengeRule::Always,
            ChallengeMode::Auto => ChallengeRule::Auto {
                after: challenge.after,
            },
        };
        let limits = SendLimits {
            cooldown_secs: policy.resend_cooldown_secs,
            per_email_per_hour: limits.per_email_per_hour,
            per_ip_per_hour: limits.per_ip_per_hour,
            global_per_hour: limits.global_per_hour,
        };
        Self {
            storage,
            keys,
            clock,
            policy,
            limits,
            challenge,
            message_domain,
            alerts: None,
        }
    }

    /// Posts `send_rate_cap` to the alert webhook when the global cap fills.
    pub fn with_alerts(mut self, alerts: Option<Arc<AlertHook>>) -> Self {
        self.alerts = alerts;
        self
    }

    pub fn policy(&self) -> &CodePolicy {
        &self.policy
    }

    /// Records the request against the limits and writes, in the same
    /// transaction, the code and its mail where the code can be used, or a
    /// notice without a code. Every accepted request mails exactly one message.
    pub async fn request(&self, req: SendRequest<'_>) -> Result<(), ApiError> {
        let outcome = self.storage.request_code(self.code_request(req)).await?;
        match outcome {
            CodeRequestOutcome::Accepted { filled_cap } => {
                crate::metrics::code_issued();
                if filled_cap {
                    self.cap_filled();
                }
                Ok(())
            }
            CodeRequestOutcome::RateLimited { retry_after } => Err(ApiError::RateLimited {
                retry_after: retry_after.max(1) as u64,
            }),
            CodeRequestOutcome::Locked { retry_after } => Err(ApiError::TooManyAttempts {
                retry_after: retry_after.max(1) as u64,
            }),
            CodeRequestOutcome::ChallengeRequired => Err(ApiError::ChallengeRequired),
        }
    }

    /// The request for the storage to decide: a fresh code and both mails it
    /// may send (the code, or the notice where the code could not be used).
    fn code_request(&self, req: SendRequest<'_>) -> CodeRequest {
        let SendRequest {
            email,
            purpose,
            lang,
            client,
            solved,
        } = req;
        let now = self.clock.now();
        let code = Code::generate(self.policy.length);
        let expires_at = now + self.policy.ttl_secs;
        let message = |kind, payload| NewMessage {
            message_id: mail::new_message_id(&self.message_domain, now),
            to: email.clone(),
            kind,
            lang,
            payload,
            // A notice answers a code request: no use once the code would have expired.
            expires_at,
        };
        let notice = match purpose {
            Purpose::Register => MailKind::AccountExists,
            _ => MailKind::NoAccount,
        };
        CodeRequest {
            email: email.clone(),
            mailbox: email.mailbox(),
            purpose,
            ip_key: client.key(),
            network: client.network(),
            challenge: self.challenge,
            solved,
            now,
            limits: self.limits,
            code_hash: self.keys.code_hash(email, purpose, &code),
            phantom_hash: phantom_hash(),
            code_expires_at: expires_at,
            mail: message(MailKind::Code(purpose), Some(code.expose().to_string())),
            notice: message(notice, None),
        }
    }

    fn cap_filled(&self) {
        let limit = self.limits.global_per_hour;
        tracing::warn!(
            limit,
            "accepted send-codes reached RATE_GLOBAL_PER_HOUR; refusing more this hour"
        );
        if let Some(alerts) = &self.alerts {
            alerts.post(&SendRateCap::new(limit));
        }
    }

    /// Checks a submitted code and consumes it when right. A code of the wrong
    /// shape is refused before any stored code is looked at.
    pub async fn verify(
        &self,
        email: &EmailAddress,
        purpose: Purpose,
        submitted: &str,
    ) -> Result<(), ApiError> {
        let guess = self.guess(email, purpose, submitted)?;
        let check = self.storage.check_code(guess).await?;
        self.judge(check)
    }

    /// A submitted code, ready for the storage to count and compare; refused
    /// here when it has the wrong shape.
    pub fn guess(
        &self,
        email: &EmailAddress,
        purpose: Purpose,
        submitted: &str,
    ) -> Result<CodeGuess, ApiError> {
        let code = Code::parse(submitted, self.policy.length).ok_or(ApiError::InvalidCode)?;
        let now = self.clock.now();
        Ok(CodeGuess {
            email: email.clone(),
            purpose,
            now,
            limits: GuessLimits {
                max_attempts: self.policy.max_attempts,
                max_failures: self.policy.max_failures,
                lock_secs: LOCK_SECS,
            },
            hash: self.keys.code_hash(email, purpose, &code),
            phantom_hash: phantom_hash(),
            phantom_expires_at: now + self.policy.ttl_secs,
        })
    }

    /// The answer to a checked guess.
    pub fn judge(&self, check: CodeCheck) -> Result<(), ApiError> {
        match check {
            CodeCheck::Valid => Ok(()),
            CodeCheck::Invalid => Err(ApiError::InvalidCode),
            CodeCheck::Exhausted => Err(ApiError::TooManyAttempts {
                retry_after: self.policy.resend_cooldown_secs.max(1) as u64,
            }),
            CodeCheck::Locked { retry_after } => Err(ApiError::TooManyAttempts {
                retry_after: retry_after.max(1) as u64,
            }),
        }
    }
}

/// 32 random bytes: stored where no code was mailed. Code hashes are keyed
/// hashes of short codes, so no code's hash is ever equal to it and every
/// guess against it is wrong, at the cost of any other comparison.
fn phantom_hash() -> [u8; 32] {
    use rand::RngCore;
    let mut hash = [0; 32];
    rand::rngs::OsRng.fill_bytes(&mut hash);
    hash
}
