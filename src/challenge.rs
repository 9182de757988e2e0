//! The built-in challenge that `send-code` may ask for: no third party (Google's
//! reCAPTCHA does not load in mainland China), so it works everywhere.
//!
//! - **Proof of work**: find a `nonce` such that SHA-256 of `salt + nonce`
//!   starts with `bits` zero bits. Costs a browser about a second (in a Web
//!   Worker, unnoticed), costs a bot that much per send, costs us one hash.
//! - **Picture**: five digits drawn with noise and a wave, for browsers
//!   without JavaScript.
//!
//! Each challenge is a row that redeeming deletes, so it is used once, on any
//! instance, and only within [`LIFETIME_SECS`]. The work salt is derived from
//! the id with the server's key, so the row needs no salt and nobody can pick
//! one; the picture's digits are kept only as a keyed hash.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::keys::Keys;
use crate::storage::{NewChallenge, Storage};

/// How long a challenge can be redeemed.
pub const LIFETIME_SECS: i64 = 120;
/// Digits in the picture.
const IMAGE_DIGITS: u32 = 5;
/// A nonce longer than this is no solution (and is not hashed).
const MAX_NONCE: usize = 64;

/// A proof-of-work challenge as `GET /api/auth/challenge` hands it out.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkChallenge {
    pub id: String,
    /// Always `sha256`.
    pub algorithm: &'static str,
    pub salt: String,
    pub bits: u32,
    pub expires_in: i64,
}

/// A picture challenge (`?kind=image`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ImageChallenge {
    pub id: String,
    /// `data:image/png;base64,…`: five digits.
    pub image: String,
    pub expires_in: i64,
}

/// What `send-code` carries in `"challenge"`: a nonce for proof of work, or
/// the digits read from the picture.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Solution {
    pub id: String,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub answer: Option<String>,
}

#[derive(Clone)]
pub struct Challenges {
    storage: Storage,
    keys: Keys,
    clock: Clock,
    bits: u32,
}

impl Challenges {
    pub fn new(storage: Storage, keys: Keys, clock: Clock, bits: u32) -> Self {
        Self {
            storage,
            keys,
            clock,
            bits,
        }
    }

    pub async fn issue_work(&self) -> Result<WorkChallenge, ApiError> {
        let id = Keys::new_id();
        self.storage
            .add_challenge(NewChallenge::work(&id, self.bits, self.expiry()))
            .await?;
        Ok(WorkChallenge {
            salt: self.salt(&id),
            id,
            algorithm: "sha256",
            bits: self.bits,
            expires_in: LIFETIME_SECS,
        })
    }

    pub async fn issue_image(&self) -> Result<ImageChallenge, ApiError> {
        let id = Keys::new_id();
        // Drawing takes a few milliseconds of CPU: off the request threads.
        let (digits, png) = tokio::task::spawn_blocking(draw)
            .await
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("drawing a challenge: {e}")))?;
        let answer_hash = self.keys.challenge_answer_hash(&id, &digits);
        self.storage
            .add_challenge(NewChallenge::image(&id, answer_hash, self.expiry()))
            .await?;
        Ok(ImageChallenge {
            id,
            image: format!("data:image/png;base64,{png}"),
            expires_in: LIFETIME_SECS,
        })
    }

    /// Whether `solution` solves a live challenge. The challenge is used up
    /// either way: a picture gets one guess.
    pub async fn redeem(&self, solution: &Solution) -> Result<bool, ApiError> {
        let now = self.clock.now();
        let id = solution.id.as_str();
        if id.len() > 64 {
            return Ok(false);
        }
        Ok(match (&solution.nonce, &solution.answer) {
            (Some(nonce), None) => match self.storage.redeem_work(id, now).await? {
                Some(bits) => nonce.len() <= MAX_NONCE && solves(&self.salt(id), nonce, bits),
                None => false,
            },
            (None, Some(answer)) => match self.storage.redeem_image(id, now).await? {
                Some(stored) => {
                    let given = self.keys.challenge_answer_hash(id, answer.trim());
                    subtle::ConstantTimeEq::ct_eq(&given[..], &stored[..]).into()
                }
                None => false,
            },
            _ => false,
        })
    }

    fn expiry(&self) -> i64 {
        self.clock.now() + LIFETIME_SECS
    }

    fn salt(&self, id: &str) -> String {
        self.keys.challenge_salt(id)
    }
}

/// Whether SHA-256 of `salt + nonce` starts with `bits` zero bits.
pub fn solves(salt: &str, nonce: &str, bits: u32) -> bool {
    let hash = Sha256::new()
        .chain_update(salt)
        .chain_update(nonce)
        .finalize();
    leading_zero_bits(&hash) >= bits
}

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// Five digits over noise, bent by a wave: readable by a person, not by a
/// plain OCR (`tests/api/challenge_ocr.rs` runs tesseract over a batch and
/// prints how many it read). No blot (the crate's `Cow`): it can hide a digit
/// from a person too, and the noise alone already defeats tesseract.
fn draw() -> (String, String) {
    use captcha::filters::{Noise, Wave};
    let mut picture = captcha::Captcha::new();
    // The font leaves out the digits people confuse with letters.
    let digits: Vec<char> = picture
        .supported_chars()
        .into_iter()
        .filter(char::is_ascii_digit)
        .collect();
    picture
        .set_chars(&digits)
        .add_chars(IMAGE_DIGITS)
        .apply_filter(Noise::new(0.2))
        .apply_filter(Wave::new(2.0, 16.0))
        .view(220, 120);
    // The crate's own PNG encoder and base64 (no other dependency for it).
    let png = picture.as_base64().unwrap_or_default();
    (picture.chars_as_string(), png)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The client's side of the work: count up until a nonce solves.
    fn solve(salt: &str, bits: u32) -> String {
        (0u64..)
            .map(|n| n.to_string())
            .find(|nonce| solves(salt, nonce, bits))
            .unwrap()
    }

    #[test]
    fn counts_leading_zero_bits_across_bytes() {
        assert_eq!(leading_zero_bits(&[0x00, 0x0f, 0xff]), 12);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0x00, 0x00]), 16);
    }

    #[test]
    fn a_solution_holds_for_its_salt_and_difficulty_only() {
        let nonce = solve("salt-a", 12);
        assert!(solves("salt-a", &nonce, 12));
        assert!(solves("salt-a", &nonce, 8), "easier holds too");
        // Another salt needs its own work (this nonce would pass by luck 1 in 4096).
        let elsewhere = (0..20).filter(|i| solves(&format!("salt-{i}x"), &nonce, 12));
        assert!(elsewhere.count() <= 1);
    }

    #[test]
    fn a_picture_has_five_digits_and_is_a_png() {
        let (digits, png) = draw();
        assert_eq!(digits.len(), 5);
        assert!(digits.chars().all(|c| c.is_ascii_digit()), "{digits}");
        assert!(png.starts_with("iVBORw0KGgo"), "a PNG, base64");
    }
}
