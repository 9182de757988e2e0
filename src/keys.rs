//! Keyed hashes of codes and session tokens, under `SECRET_KEY`. The database
//! never holds a code or a token, only these MACs.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::domain::{Code, EmailAddress, Purpose};

#[derive(Clone)]
pub struct Keys {
    key: Vec<u8>,
}

impl Keys {
    pub fn new(secret: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
        }
    }

    /// A fresh secret for first start: 32 random bytes, hex.
    pub fn generate_secret() -> String {
        hex(&random_bytes::<32>())
    }

    fn mac(&self, domain: &str, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(domain.as_bytes());
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") never collide.
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// A key of its own for another use (`label`), so that no MAC made with
    /// it can ever be mistaken for a code or token hash.
    pub fn derive(&self, label: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(label);
        mac.finalize().into_bytes().into()
    }

    /// Binds the code to its address and purpose: a code for one never matches another.
    pub fn code_hash(&self, email: &EmailAddress, purpose: Purpose, code: &Code) -> [u8; 32] {
        self.mac(
            "authmail code v1",
            &[
                email.as_str().as_bytes(),
                purpose.as_str().as_bytes(),
                code.expose().as_bytes(),
            ],
        )
    }

    pub fn token_hash(&self, token: &str) -> [u8; 32] {
        self.mac("authmail session v1", &[token.as_bytes()])
    }

    /// The proof-of-work salt of challenge `id`: derived, so it need not be
    /// stored and no client can choose it.
    pub fn challenge_salt(&self, id: &str) -> String {
        hex(&self.mac("authmail challenge salt v1", &[id.as_bytes()])[..16])
    }

    /// What the digits of picture challenge `id` are kept as.
    pub fn challenge_answer_hash(&self, id: &str, answer: &str) -> [u8; 32] {
        self.mac(
            "authmail challenge answer v1",
            &[id.as_bytes(), answer.as_bytes()],
        )
    }

    /// A fresh random id: 16 bytes, hex.
    pub fn new_id() -> String {
        hex(&random_bytes::<16>())
    }

    /// A session token: 32 random bytes, hex (256 bits; guessing is hopeless).
    pub fn new_token() -> String {
        hex(&random_bytes::<32>())
    }
}

pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_hash_is_bound_to_address_and_purpose() {
        let keys = Keys::new("k");
        let a = EmailAddress::parse("a@example.com").unwrap();
        let b = EmailAddress::parse("b@example.com").unwrap();
        let code = Code::parse("123456", 6).unwrap();
        let stored = keys.code_hash(&a, Purpose::Login, &code);
        // Stored codes are compared by hash (`CodeGuess::matches`, in constant time).
        assert_eq!(keys.code_hash(&a, Purpose::Login, &code), stored);
        assert_ne!(keys.code_hash(&b, Purpose::Login, &code), stored);
        assert_ne!(keys.code_hash(&a, Purpose::Register, &code), stored);
        assert_ne!(
            Keys::new("other").code_hash(&a, Purpose::Login, &code),
            stored
        );
    }
}
