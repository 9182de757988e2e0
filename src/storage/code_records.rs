//! The values of the code flows that cross the storage interface: a
//! send-code request with its limits and challenge rule, a guess with its
//! limits, and how each fared.

use super::records::NewMessage;
use crate::domain::{EmailAddress, Purpose};

/// The limits a send-code request is held to; zero disables one. The
/// cooldown and the per-address limit count per mailbox and purpose.
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub cooldown_secs: i64,
    pub per_email_per_hour: i64,
    pub per_ip_per_hour: i64,
    /// Accepted requests across all instances (`RATE_GLOBAL_PER_HOUR`).
    pub global_per_hour: i64,
}

/// The advisory lock of the global send count (no address or IP looks like it).
const GLOBAL_SEND_KEY: &str = "send-code:global";

/// When a send-code must carry a solved challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeRule {
    Never,
    Always,
    /// From a network with `after` accepted send-codes in the last hour, and
    /// from everyone while the global count is over half its cap.
    Auto {
        after: i64,
    },
}

/// One send-code request, decided and recorded in one transaction.
pub struct CodeRequest {
    pub email: EmailAddress,
    /// `email.mailbox()`: what the cooldown and the per-address limit count.
    pub mailbox: String,
    pub purpose: Purpose,
    pub ip_key: String,
    /// The client network (`ClientIp::network`).
    pub network: String,
    pub challenge: ChallengeRule,
    /// The request carried a challenge it solved (and used up).
    pub solved: bool,
    pub now: i64,
    pub limits: SendLimits,
    pub code_hash: [u8; 32],
    /// Stored instead of `code_hash` where the code could not be used: the
    /// hash of no code at all, so every guess against it is wrong.
    pub phantom_hash: [u8; 32],
    pub code_expires_at: i64,
    /// The code mail, sent where the code can be used.
    pub mail: NewMessage,
    /// The notice without a code, sent everywhere else.
    pub notice: NewMessage,
}

impl CodeRequest {
    /// What PostgreSQL locks for this request: the address and its mailbox,
    /// the client's IP only when its limit is on (otherwise every request from
    /// one IP, an app server calling the API say, would queue behind one lock
    /// for nothing), and the global count only when it is capped: then every
    /// send-code takes its turn, the price of a cap that holds exactly.
    pub(super) fn lock_keys(&self) -> Vec<String> {
        let mut keys = vec![self.email.to_string(), self.mailbox.clone()];
        if self.limits.per_ip_per_hour > 0 {
            keys.push(self.ip_key.clone());
        }
        if self.limits.global_per_hour > 0 {
            keys.push(GLOBAL_SEND_KEY.to_string());
        }
        keys
    }
}

/// One submitted code, to be counted and compared in one transaction.
pub struct CodeGuess {
    pub email: EmailAddress,
    pub purpose: Purpose,
    pub now: i64,
    pub limits: GuessLimits,
    /// The submitted code's hash (`Keys::code_hash`).
    pub hash: [u8; 32],
    /// Where no live code exists, a row with this hash (of no code) and
    /// lifetime takes its place, so the guess is counted like any other.
    pub phantom_hash: [u8; 32],
    pub phantom_expires_at: i64,
}

impl CodeGuess {
    /// In constant time: a guess must not learn how much of a hash it matched.
    pub(super) fn matches(&self, stored: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.hash.ct_eq(stored).into()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRequestOutcome {
    /// Accepted: a code or a notice was written to the outbox. `filled_cap`:
    /// this request was the one that filled the global hourly cap (so exactly
    /// one request per crossing, across instances, says so).
    Accepted {
        filled_cap: bool,
    },
    RateLimited {
        retry_after: i64,
    },
    Locked {
        retry_after: i64,
    },
    /// A challenge is required and none was solved: nothing was counted.
    ChallengeRequired,
}

/// How a submitted code fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    Valid,
    /// Wrong, expired, used, voided or never sent: one answer for all.
    Invalid,
    /// The live code (or the stand-in for a missing one) has had
    /// `CODE_MAX_ATTEMPTS` guesses.
    Exhausted,
    Locked {
        retry_after: i64,
    },
}

/// The limits a code guess is held to.
#[derive(Debug, Clone, Copy)]
pub struct GuessLimits {
    pub max_attempts: i64,
    pub max_failures: i64,
    pub lock_secs: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guess_matches_only_its_whole_hash() {
        let guess = CodeGuess {
            email: EmailAddress::parse("a@example.com").unwrap(),
            purpose: Purpose::Login,
            now: 0,
            limits: GuessLimits {
                max_attempts: 5,
                max_failures: 0,
                lock_secs: 0,
            },
            hash: [7; 32],
            phantom_hash: [0; 32],
            phantom_expires_at: 0,
        };
        assert!(guess.matches(&[7; 32]));
        assert!(!guess.matches(&[7; 31]), "a prefix is not a match");
        assert!(!guess.matches(&[[7; 32].as_slice(), &[0]].concat()));
        let mut other = [7; 32];
        other[31] = 8;
        assert!(!guess.matches(&other));
    }
}
