//! Tokens and webhook deliveries made by the tests, as authmail would make
//! them or as an attacker would: JWTs signed with authmail's stored key
//! (read from its database with `SECRET_KEY`), with a key of the attacker's,
//! or not at all; Standard Webhooks headers for any key.

use authmail::jwt::signing_key::{ActiveKey, Sealer};
use authmail::keys::Keys;
use authmail::storage::StoredJwtKey;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};

use super::api::time_now;
use super::app::TestApp;
use super::example::AUDIENCE;
use super::pictures::SECRET as SECRET_KEY;

/// Standard Webhooks' headers for one delivery of `body`.
pub fn hook_headers(
    key: &[u8],
    id: &str,
    timestamp: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let signature = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    vec![
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", timestamp.to_string()),
        ("webhook-signature", signature),
    ]
}

/// Claims as authmail writes them for `user`, issued `shift` seconds from now.
pub fn claims(app: &TestApp, user: &Value, shift: i64) -> Value {
    let iat = time_now() + shift;
    json!({"iss": app.base, "sub": user["id"], "email": user["email"], "sid": "1",
           "iat": iat, "exp": iat + 600, "aud": AUDIENCE})
}

/// `claims` signed with authmail's current key, read from its database.
pub async fn sign(app: &TestApp, claims: &Value) -> String {
    let current = "FROM jwt_keys WHERE retired_at IS NULL";
    let kid = app
        .db
        .texts(&format!("SELECT kid {current}"))
        .await
        .remove(0);
    let stored = StoredJwtKey {
        public_key: app
            .db
            .blobs(&format!("SELECT public_key {current}"))
            .await
            .remove(0),
        private_key: app
            .db
            .blobs(&format!("SELECT private_key {current}"))
            .await
            .remove(0),
        kid,
    };
    let key = ActiveKey::open(&stored, &Sealer::new(&Keys::new(SECRET_KEY))).unwrap();
    key.sign(claims).unwrap()
}

pub fn ed25519_key(seed: [u8; 32]) -> jsonwebtoken::EncodingKey {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let der = ed25519_dalek::SigningKey::from_bytes(&seed)
        .to_pkcs8_der()
        .unwrap();
    jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
}

/// `claims` signed with EdDSA by `key`, under `kid`.
pub fn forge(kid: &str, claims: &Value, key: &jsonwebtoken::EncodingKey) -> String {
    let header = with_kid(
        jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        kid,
    );
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

pub fn with_kid(mut header: jsonwebtoken::Header, kid: &str) -> jsonwebtoken::Header {
    header.kid = Some(kid.to_string());
    header
}

pub fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The JSON of a compact JWS's `n`-th part, unverified.
pub fn part(jwt: &str, n: usize) -> Value {
    let part = jwt.split('.').nth(n).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or_default()
}
