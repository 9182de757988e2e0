//! Everything about mail: rendering, the SMTP transport, the outbox worker and
//! the dev mailbox. Nothing here knows about HTTP.

pub mod alert;
pub mod diagnose;
pub mod outbox;
pub mod templates;
pub mod transport;

use rand::RngCore;

/// A globally unique `Message-ID` (RFC 5322 §3.6.4), made when the message is
/// queued (at `now`) so every retry of it carries the same one.
pub fn new_message_id(domain: &str, now: i64) -> String {
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("<{}.{}@{domain}>", now, crate::keys::hex(&bytes))
}
