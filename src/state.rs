//! The state every handler shares: settings, storage, the flows, the JWT
//! signer, the clock,
//! the page CSRF key. One home, used by the API and the pages alike.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::accounts::Accounts;
use crate::challenge::Challenges;
use crate::clock::Clock;
use crate::codes::Codes;
use crate::config::Settings;
use crate::jwt::Jwt;
use crate::pages::csrf::CsrfKey;
use crate::storage::Storage;

#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub storage: Storage,
    pub codes: Codes,
    pub challenges: Challenges,
    pub accounts: Accounts,
    /// Signs the JWTs of `POST /api/auth/jwt`; lists the keys of the JWKS.
    pub jwt: Jwt,
    /// Where "now" comes from: the system's, or a test's.
    pub clock: Clock,
    /// Wakes the outbox worker when a message is queued.
    pub outbox_wake: Arc<Notify>,
    /// The page forms' CSRF MAC key, derived from `SECRET_KEY` at start.
    pub csrf: Arc<CsrfKey>,
}
