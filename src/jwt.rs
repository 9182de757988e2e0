//! JWTs an app's backend can check without calling authmail: `POST
//! /api/auth/jwt` turns a live session into a short-lived Ed25519 JWS, and
//! `/.well-known/jwks.json` publishes the keys that verify it.
//!
//! The signing key is made on first start and kept in the database (sealed,
//! see `signing_key`), shared by every instance. `authmail keys rotate` makes
//! a new one. Each instance looks again at which key is current at most
//! [`REFRESH_SECS`] after it last did, so a retired key may go on signing on
//! some instance for that long; it stays published until `JWT_TTL_SECS`
//! after that, when every token it signed has expired.

mod provider;
// Public so that tests can sign with the stored key what authmail itself
// never signs (a token expired long ago, another `iss`) and see it refused.
pub mod signing_key;

use std::sync::{Arc, RwLock};

use serde::Serialize;

use crate::clock::Clock;
use crate::config::JwtSettings;
use crate::error::ApiError;
use crate::keys::Keys;
use crate::storage::{LiveSession, Storage, StorageError};
pub use signing_key::public_x;
use signing_key::{ActiveKey, Sealer};

/// The longest an instance signs with a key after another became current.
pub const REFRESH_SECS: i64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Sealed under another `SECRET_KEY`, or damaged.
    #[error("the JWT signing key {kid} cannot be opened with this SECRET_KEY (was SECRET_KEY changed?); `authmail keys rotate` makes a new one")]
    Sealed { kid: String },
    #[error("JWT: {0}")]
    Jose(#[from] jsonwebtoken::errors::Error),
}

impl From<JwtError> for ApiError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::Storage(e) => e.into(),
            other => ApiError::Internal(other.into()),
        }
    }
}

/// Issues JWTs and lists the keys that verify them. Cheap to clone (the
/// state clones it for every request).
#[derive(Clone)]
pub struct Jwt(Arc<Inner>);

struct Inner {
    storage: Storage,
    sealer: Sealer,
    clock: Clock,
    issuer: String,
    settings: JwtSettings,
    current: RwLock<Option<Current>>,
}

/// The signing key as this instance last read it, and when (clock seconds).
struct Current {
    key: Arc<ActiveKey>,
    checked_at: i64,
}

/// A signed token and when it expires (Unix seconds).
pub struct Issued {
    pub jwt: String,
    pub expires_at: i64,
}

/// A key the JWKS lists: its kid and its public half (JWK `x`).
pub struct PublicKey {
    pub kid: String,
    pub x: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    sub: String,
    email: &'a str,
    sid: String,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// What `authmail keys rotate` did.
pub struct Rotated {
    pub kid: String,
    /// When the key it replaced leaves the JWKS; `None` when there was none.
    pub previous_published_until: Option<i64>,
}

impl Jwt {
    /// `issuer`: `PUBLIC_URL`, the tokens' `iss`.
    pub fn new(
        storage: Storage,
        keys: &Keys,
        clock: Clock,
        issuer: String,
        settings: JwtSettings,
    ) -> Self {
        provider::install();
        Self(Arc::new(Inner {
            storage,
            sealer: Sealer::new(keys),
            clock,
            issuer,
            settings,
            current: RwLock::default(),
        }))
    }

    /// Makes the first key if there is none yet, and checks that the
    /// current one opens: a `SECRET_KEY` that cannot is a start-up error,
    /// not a 500 at the first sign-in.
    pub async fn start(&self) -> Result<(), JwtError> {
        self.current_key().await.map(drop)
    }

    /// A token for the session's user, signed with the current key.
    pub async fn issue(&self, session: &LiveSession) -> Result<Issued, JwtError> {
        let key = self.current_key().await?;
        let now = self.0.clock.now();
        let expires_at = now + self.0.settings.ttl_secs;
        let claims = Claims {
            iss: &self.0.issuer,
            sub: session.user.id.to_string(),
            email: &session.user.email,
            sid: session.session_id.to_string(),
            iat: now,
            exp: expires_at,
            aud: self.0.settings.audience.as_deref(),
        };
        Ok(Issued {
            jwt: key.sign(&claims)?,
            expires_at,
        })
    }

    /// The current key and every retired one a live token may still name.
    pub async fn published_keys(&self) -> Result<Vec<PublicKey>, JwtError> {
        let retired_after = self.0.clock.now() - published_for(self.0.settings.ttl_secs);
        let keys = self.0.storage.published_jwt_keys(retired_after).await?;
        Ok(keys
            .into_iter()
            .map(|k| PublicKey {
                x: public_x(&k.public_key),
                kid: k.kid,
            })
            .collect())
    }

    /// The key to sign with: the one read less than [`REFRESH_SECS`] ago, or
    /// the current one read again (opened again only when it changed).
    async fn current_key(&self) -> Result<Arc<ActiveKey>, JwtError> {
        let now = self.0.clock.now();
        let cached = self
            .0
            .current
            .read()
            .expect("not poisoned")
            .as_ref()
            .map(|c| {
                let fresh = (0..REFRESH_SECS).contains(&(now - c.checked_at));
                (Arc::clone(&c.key), fresh)
            });
        if let Some((key, true)) = cached {
            return Ok(key);
        }
        let stored = match self.0.storage.current_jwt_key().await? {
            Some(stored) => stored,
            None => {
                let first = signing_key::generate(&self.0.sealer)?;
                self.0.storage.insert_first_jwt_key(first, now).await?;
                // Another instance may have stored its own first: read the one that won.
                let current = self.0.storage.current_jwt_key().await?;
                current
                    .ok_or_else(|| StorageError::Other("no JWT signing key was stored".into()))?
            }
        };
        let key = match cached {
            Some((key, _)) if key.kid == stored.kid => key,
            _ => Arc::new(ActiveKey::open(&stored, &self.0.sealer)?),
        };
        *self.0.current.write().expect("not poisoned") = Some(Current {
            key: Arc::clone(&key),
            checked_at: now,
        });
        Ok(key)
    }
}

/// How long after its retirement a key stays published: until every token it
/// can have signed (on an instance that had not yet seen the rotation) expired.
pub fn published_for(ttl_secs: i64) -> i64 {
    ttl_secs + REFRESH_SECS
}

/// `authmail keys rotate`: a new key signs from now on (on every instance
/// within [`REFRESH_SECS`]); the one it replaces stays published.
pub async fn rotate(
    storage: &Storage,
    keys: &Keys,
    settings: &JwtSettings,
    now: i64,
) -> Result<Rotated, JwtError> {
    provider::install();
    let key = signing_key::generate(&Sealer::new(keys))?;
    let kid = key.kid.clone();
    let replaced = storage.rotate_jwt_key(key, now).await?;
    Ok(Rotated {
        kid,
        previous_published_until: replaced.then(|| now + published_for(settings.ttl_secs)),
    })
}
