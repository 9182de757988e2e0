//! CSRF protection for the page forms: each browser gets a random id in an
//! HttpOnly cookie, and every form carries HMAC(key, id). A cross-site page can
//! neither read the cookie nor compute the MAC, and a planted cookie (from a
//! sibling subdomain, say) is useless without a token made for it under
//! `SECRET_KEY`, so the check holds even before anyone is signed in (login CSRF).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::keys::{self, Keys};

pub const COOKIE: &str = "authmail_csrf";

pub struct CsrfKey([u8; 32]);

impl CsrfKey {
    /// A key of its own, derived from `SECRET_KEY`, so a CSRF token can never
    /// be mistaken for any other MAC the service makes.
    pub fn derive(secret: &str) -> Self {
        Self(mac(secret.as_bytes(), b"authmail page csrf v1"))
    }

    pub fn token(&self, browser_id: &str) -> String {
        keys::hex(&mac(&self.0, browser_id.as_bytes()))
    }

    pub fn verify(&self, browser_id: Option<&str>, submitted: &str) -> bool {
        match browser_id.filter(|id| is_browser_id(id)) {
            Some(id) => self.token(id).as_bytes().ct_eq(submitted.as_bytes()).into(),
            None => false,
        }
    }
}

fn mac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A fresh browser id: 256 random bits, hex.
pub fn new_browser_id() -> String {
    Keys::new_token()
}

/// Only ids of the shape we issue are used; anything else is replaced.
pub fn is_browser_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_verifies_only_for_its_browser_and_key() {
        let key = CsrfKey::derive("secret-one");
        let a = new_browser_id();
        let b = new_browser_id();
        let token = key.token(&a);
        assert!(key.verify(Some(&a), &token));
        assert!(!key.verify(Some(&b), &token), "another browser's token");
        assert!(!key.verify(None, &token), "no cookie");
        assert!(!key.verify(Some(&a), ""), "no token");
        assert!(!key.verify(Some(&a), &token[..63]), "truncated token");
        assert!(!CsrfKey::derive("secret-two").verify(Some(&a), &token));
    }

    #[test]
    fn malformed_browser_ids_never_verify() {
        let key = CsrfKey::derive("k");
        for id in ["", "abc", &"z".repeat(64), &"a".repeat(65)] {
            assert!(!key.verify(Some(id), &key.token(id)), "{id:?}");
        }
    }
}
