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
    pub fn derive(keys: &Keys) -> Self {
        Self(keys.derive(b"authmail page csrf v1"))
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

/// Whether a form post came from the pages themselves. The token alone is not
/// enough: a sibling subdomain can plant the CSRF cookie and post its token
/// (login CSRF). Browsers say where a request comes from in `Sec-Fetch-Site`
/// (`same-site` is such a sibling) and `Origin`; a browser too old to send
/// either still has the token check.
pub fn same_origin_post(
    sec_fetch_site: Option<&str>,
    origin: Option<&str>,
    public_url: &str,
) -> bool {
    let site_ok = sec_fetch_site.is_none_or(|s| s == "same-origin" || s == "none");
    let origin_ok = origin.is_none_or(|o| {
        let ours = origin_of(public_url);
        ours.is_some() && origin_of(o) == ours
    });
    site_ok && origin_ok
}

/// `scheme://host[:port]` of a URL, lowercased, without a default port.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let host = authority.strip_suffix(default_port).unwrap_or(&authority);
    (!host.is_empty()).then(|| format!("{scheme}://{host}"))
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
        let key = CsrfKey::derive(&Keys::new("secret-one"));
        let a = new_browser_id();
        let b = new_browser_id();
        let token = key.token(&a);
        assert!(key.verify(Some(&a), &token));
        assert!(!key.verify(Some(&b), &token), "another browser's token");
        assert!(!key.verify(None, &token), "no cookie");
        assert!(!key.verify(Some(&a), ""), "no token");
        assert!(!key.verify(Some(&a), &token[..63]), "truncated token");
        assert!(!CsrfKey::derive(&Keys::new("secret-two")).verify(Some(&a), &token));
    }

    #[test]
    fn only_same_origin_posts_pass() {
        let public = "https://auth.example.com";
        let ok = |site, origin| same_origin_post(site, origin, public);
        assert!(ok(None, None), "an old browser: the token decides");
        assert!(ok(Some("same-origin"), Some("https://auth.example.com")));
        assert!(ok(Some("none"), None));
        assert!(ok(None, Some("https://AUTH.example.com:443")));
        assert!(!ok(Some("same-site"), Some("https://auth.example.com")));
        assert!(!ok(Some("cross-site"), None));
        assert!(!ok(Some("same-origin"), Some("https://evil.example.com")));
        assert!(!ok(None, Some("http://auth.example.com")), "another scheme");
        assert!(!ok(None, Some("null")));
        assert!(same_origin_post(
            None,
            Some("http://127.0.0.1:8080"),
            "http://127.0.0.1:8080/"
        ));
        assert!(same_origin_post(
            None,
            Some("http://a.test"),
            "http://a.test:80/auth"
        ));
    }

    #[test]
    fn malformed_browser_ids_never_verify() {
        let key = CsrfKey::derive(&Keys::new("k"));
        for id in ["", "abc", &"z".repeat(64), &"a".repeat(65)] {
            assert!(!key.verify(Some(id), &key.token(id)), "{id:?}");
        }
    }
}
