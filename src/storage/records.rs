//! The values that cross the storage interface: what callers hand in (requests,
//! guesses, messages to queue) and what they get back (users, claimed mail,
//! outcomes). Rows are read by column name on both backends.

use crate::domain::{EmailAddress, Lang, Purpose};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// What kind of mail an outbox row is; decides template and retry horizon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MailKind {
    Code(Purpose),
    /// The answer to a register request for an address that has an account:
    /// sign in or reset the password. No code.
    AccountExists,
    /// The answer to a login or reset request for an address without an
    /// account: register. No code.
    NoAccount,
    PasswordChanged,
    Test,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code(p) => p.as_str(),
            Self::AccountExists => "account_exists",
            Self::NoAccount => "no_account",
            Self::PasswordChanged => "password_changed",
            Self::Test => "test",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "account_exists" => Some(Self::AccountExists),
            "no_account" => Some(Self::NoAccount),
            "password_changed" => Some(Self::PasswordChanged),
            "test" => Some(Self::Test),
            other => Purpose::parse(other).map(Self::Code),
        }
    }
}

/// A message to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub message_id: String,
    pub to: EmailAddress,
    pub kind: MailKind,
    pub lang: Lang,
    /// Template data (the code); cleared once the message is final.
    pub payload: Option<String>,
    /// A code mail stops trying when its code expires; other mail after 24 hours.
    pub expires_at: i64,
}

/// A claimed outbox message, decoded and ready to render and send.
#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub id: i64,
    pub message_id: String,
    pub to: EmailAddress,
    pub kind: MailKind,
    pub lang: Lang,
    pub payload: Option<String>,
    /// Tries so far, this one included.
    pub attempts: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
}

/// A user event to put in the outbox for the webhook (built by
/// [`crate::webhooks::Webhooks::user_event`]).
#[derive(Debug, Clone)]
pub struct NewWebhook {
    /// The event's `webhook-id`, the same on every try.
    pub webhook_id: String,
    /// The URL as shown (any password masked); what the admin API lists as `to`.
    pub target: String,
    /// The JSON body, signed anew at each try.
    pub body: String,
    /// Tried for 24 hours.
    pub expires_at: i64,
}

/// A claimed webhook event, ready to sign and POST.
#[derive(Debug, Clone)]
pub struct WebhookMessage {
    pub id: i64,
    pub webhook_id: String,
    pub body: String,
    /// Tries so far, this one included.
    pub attempts: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
}

/// Which worker takes a row: mail and webhook events are claimed apart,
/// so neither can hold up the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Mail,
    Webhook,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mail => "mail",
            Self::Webhook => "webhook",
        }
    }
}

/// What the worker needs of any claimed row, whatever it carries.
pub trait Claimed {
    fn id(&self) -> i64;
    /// The claim that holds it: outcomes are fenced by it.
    fn attempts(&self) -> i64;
    fn expires_at(&self) -> i64;
    fn last_error(&self) -> Option<&str>;
}

/// Both claimed kinds keep these under the same names.
macro_rules! claimed {
    ($($t:ty),*) => {$(
        impl Claimed for $t {
            fn id(&self) -> i64 {
                self.id
            }
            fn attempts(&self) -> i64 {
                self.attempts
            }
            fn expires_at(&self) -> i64 {
                self.expires_at
            }
            fn last_error(&self) -> Option<&str> {
                self.last_error.as_deref()
            }
        }
    )*};
}
claimed!(OutboxMessage, WebhookMessage);

/// A claimed outbox row as stored, before it is decoded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct OutboxRow {
    pub id: i64,
    pub message_id: String,
    pub recipient: String,
    pub kind: String,
    pub lang: String,
    pub payload: Option<String>,
    pub attempts: i64,
    pub expires_at: i64,
    pub last_error: Option<String>,
}

impl OutboxRow {
    /// The message, or why it cannot be sent: a kind or an address this
    /// version does not know (written by a newer one, say). An unknown
    /// language falls back to the default, as a mail in it is still useful.
    pub fn decode(self) -> Result<OutboxMessage, String> {
        let kind = MailKind::parse(&self.kind)
            .ok_or_else(|| format!("unknown mail kind {:?}", self.kind))?;
        let to = EmailAddress::parse(&self.recipient)
            .map_err(|_| "the recipient is not a valid address".to_string())?;
        Ok(OutboxMessage {
            lang: Lang::parse(&self.lang).unwrap_or_default(),
            id: self.id,
            message_id: self.message_id,
            to,
            kind,
            payload: self.payload,
            attempts: self.attempts,
            expires_at: self.expires_at,
            last_error: self.last_error,
        })
    }

    /// The webhook event, or why it cannot be sent (no body: a row written
    /// by hand, say).
    pub fn decode_webhook(self) -> Result<WebhookMessage, String> {
        Ok(WebhookMessage {
            body: self.payload.ok_or("the event has no body")?,
            id: self.id,
            webhook_id: self.message_id,
            attempts: self.attempts,
            expires_at: self.expires_at,
            last_error: self.last_error,
        })
    }
}

/// An outbox row as the admin API and the `outbox` command show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxEntry {
    pub id: i64,
    pub recipient: String,
    pub kind: String,
    pub status: String,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxStats {
    /// Mail only: webhook events never count toward the mail numbers.
    pub sent: i64,
    pub failed: i64,
    pub queued: i64,
    /// Webhook events waiting now.
    pub webhooks_queued: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DevMail {
    #[sqlx(rename = "recipient")]
    pub to: String,
    pub subject: String,
    pub text: String,
    /// The code the mail carried; `None` for a notice or other mail.
    pub code: Option<String>,
    pub created_at: i64,
}

/// A session to open, keyed by its token's hash.
#[derive(Clone, Copy)]
pub struct NewSession {
    pub token_hash: [u8; 32],
    pub created_at: i64,
    pub expires_at: i64,
}

/// A session that has not ended, and whose it is.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LiveSession {
    /// The session's own id (a JWT's `sid`), never its token.
    pub session_id: i64,
    #[sqlx(flatten)]
    pub user: User,
}

/// A JWT signing key as stored: the private half sealed (`jwt::keys`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredJwtKey {
    pub kid: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
}

/// A key the JWKS lists: only its public half is ever read for it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PublishedJwtKey {
    pub kid: String,
    pub public_key: Vec<u8>,
}
