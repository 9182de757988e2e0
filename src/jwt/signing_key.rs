//! One Ed25519 signing key: made from 32 random bytes, kept in the database
//! with its private half sealed, named by its RFC 7638 thumbprint.
//!
//! Why sealed: the database never holds a code or a session token, only
//! MACs of them, so a copy of it (a backup, a dump) lets nobody sign in. A
//! signing key in clear would break that: anyone holding the copy could mint
//! a JWT for any user that every app trusts. Sealed under a key derived from
//! `SECRET_KEY`, it is as safe as the sessions are: when `SECRET_KEY` is set
//! outside the database (as several instances need anyway), the copy alone
//! cannot sign. Changing `SECRET_KEY` makes the stored key unusable, as it
//! ends every session; `authmail keys rotate` then makes a new one.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::pkcs8::{EncodePrivateKey, KeypairBytes};
use ed25519_dalek::SigningKey as Ed25519Key;
use jsonwebtoken::jwk::{Jwk, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use serde::Serialize;

use super::JwtError;
use crate::keys::{random_bytes, Keys};
use crate::storage::StoredJwtKey;

/// Seals and opens the private halves, under a key derived from `SECRET_KEY`.
#[derive(Clone)]
pub struct Sealer(Arc<LessSafeKey>);

impl Sealer {
    pub fn new(keys: &Keys) -> Self {
        let key = keys.derive(b"authmail jwt signing key seal v1");
        let key = UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a 32-byte key");
        Self(Arc::new(LessSafeKey::new(key)))
    }

    /// Nonce, then ciphertext and tag. The kid is bound in as associated data,
    /// so a sealed key moved to another row does not open.
    fn seal(&self, kid: &str, seed: &[u8; 32]) -> Vec<u8> {
        // Random nonces are safe here: a deployment seals a handful of keys.
        let nonce = random_bytes::<NONCE_LEN>();
        let mut sealed = seed.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut sealed,
            )
            .expect("sealing 32 bytes cannot fail");
        [nonce.as_slice(), &sealed].concat()
    }

    /// `None` when it was sealed under another `SECRET_KEY` (or tampered with).
    fn open(&self, kid: &str, sealed: &[u8]) -> Option<[u8; 32]> {
        let (nonce, sealed) = sealed.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buf = sealed.to_vec();
        let seed = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .ok()?;
        seed.try_into().ok()
    }
}

/// A new key, its private half sealed, ready to store.
pub fn generate(sealer: &Sealer) -> Result<StoredJwtKey, JwtError> {
    let seed = random_bytes::<32>();
    let public = Ed25519Key::from_bytes(&seed).verifying_key().to_bytes();
    let kid = thumbprint(&public)?;
    Ok(StoredJwtKey {
        private_key: sealer.seal(&kid, &seed),
        public_key: public.to_vec(),
        kid,
    })
}

/// The RFC 7638 thumbprint of the public key's JWK: a kid that names the key
/// itself, the same wherever it is computed.
fn thumbprint(public: &[u8; 32]) -> Result<String, JwtError> {
    let jwk = Jwk::from_decoding_key(&DecodingKey::from_ed_der(public), Some(Algorithm::EdDSA))?;
    Ok(jwk.thumbprint(ThumbprintHash::SHA256)?)
}

/// The key that signs, opened.
pub struct ActiveKey {
    pub kid: String,
    encoding: EncodingKey,
}

impl ActiveKey {
    pub fn open(stored: &StoredJwtKey, sealer: &Sealer) -> Result<Self, JwtError> {
        let sealed = || JwtError::Sealed {
            kid: stored.kid.clone(),
        };
        let seed = sealer
            .open(&stored.kid, &stored.private_key)
            .ok_or_else(sealed)?;
        let key = Ed25519Key::from_bytes(&seed);
        if key.verifying_key().as_bytes().as_slice() != stored.public_key {
            return Err(sealed());
        }
        // PKCS#8 v1, without the public key: the signer derives that from the
        // seed anyway, and would otherwise decode and compare it on every token.
        let der = KeypairBytes {
            secret_key: seed,
            public_key: None,
        }
        .to_pkcs8_der()
        .map_err(|_| sealed())?;
        Ok(Self {
            kid: stored.kid.clone(),
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
        })
    }

    /// A compact JWS of `claims`: `alg` EdDSA, `kid` this key's.
    pub fn sign(&self, claims: &impl Serialize) -> Result<String, JwtError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &self.encoding)?)
    }
}

/// The JWK `x` of a public key (RFC 8037: the 32 bytes, base64url).
pub fn public_x(public_key: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(public_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(secret: &str) -> Sealer {
        Sealer::new(&Keys::new(secret))
    }

    #[test]
    fn a_key_opens_only_under_its_secret_and_kid() {
        let stored = generate(&sealer("one")).unwrap();
        assert_eq!(stored.public_key.len(), 32);
        assert_eq!(stored.kid.len(), 43, "base64url of a SHA-256");
        assert!(ActiveKey::open(&stored, &sealer("one")).is_ok());
        assert!(matches!(
            ActiveKey::open(&stored, &sealer("two")),
            Err(JwtError::Sealed { .. })
        ));
        let moved = StoredJwtKey {
            kid: "another-kid".into(),
            ..stored.clone()
        };
        assert!(ActiveKey::open(&moved, &sealer("one")).is_err());
        let mut flipped = stored.clone();
        flipped.private_key[NONCE_LEN] ^= 1;
        assert!(ActiveKey::open(&flipped, &sealer("one")).is_err());
    }

    #[test]
    fn the_seed_is_not_stored_in_clear() {
        let stored = generate(&sealer("one")).unwrap();
        let seed = sealer("one")
            .open(&stored.kid, &stored.private_key)
            .unwrap();
        assert!(!stored.private_key.windows(32).any(|w| w == seed.as_slice()));
    }

    #[test]
    fn kids_are_thumbprints_of_the_public_key() {
        let stored = generate(&sealer("one")).unwrap();
        let public: [u8; 32] = stored.public_key.clone().try_into().unwrap();
        assert_eq!(thumbprint(&public).unwrap(), stored.kid);
        assert_ne!(generate(&sealer("one")).unwrap().kid, stored.kid);
    }

    #[test]
    fn a_signature_verifies_with_the_published_key() {
        use jsonwebtoken::{decode, decode_header, Validation};
        let stored = generate(&sealer("one")).unwrap();
        let key = ActiveKey::open(&stored, &sealer("one")).unwrap();
        let jwt = key
            .sign(&serde_json::json!({"sub": "1", "exp": 4_000_000_000_i64}))
            .unwrap();
        let header = decode_header(&jwt).unwrap();
        assert_eq!(header.alg, Algorithm::EdDSA);
        assert_eq!(header.kid.as_deref(), Some(stored.kid.as_str()));
        let public = DecodingKey::from_ed_components(&public_x(&stored.public_key)).unwrap();
        let claims = decode::<serde_json::Value>(&jwt, &public, &Validation::new(Algorithm::EdDSA))
            .unwrap()
            .claims;
        assert_eq!(claims["sub"], "1");
        let other = generate(&sealer("one")).unwrap();
        let wrong = DecodingKey::from_ed_components(&public_x(&other.public_key)).unwrap();
        assert!(
            decode::<serde_json::Value>(&jwt, &wrong, &Validation::new(Algorithm::EdDSA)).is_err()
        );
    }
}
