//! Challenges handed out and redeemed (see `crate::challenge`). Redeeming
//! deletes the row in one statement, so two instances (or two parallel
//! requests) can never both redeem one challenge.

use super::exec::{args, Exec};
use super::{Result, Storage};

/// A challenge to keep until it is redeemed or expires.
pub struct NewChallenge {
    id: String,
    kind: &'static str,
    bits: i64,
    answer_hash: Option<[u8; 32]>,
    expires_at: i64,
}

impl NewChallenge {
    pub fn work(id: &str, bits: u32, expires_at: i64) -> Self {
        Self {
            id: id.to_string(),
            kind: "work",
            bits: i64::from(bits),
            answer_hash: None,
            expires_at,
        }
    }

    pub fn image(id: &str, answer_hash: [u8; 32], expires_at: i64) -> Self {
        Self {
            id: id.to_string(),
            kind: "image",
            bits: 0,
            answer_hash: Some(answer_hash),
            expires_at,
        }
    }
}

impl Storage {
    pub async fn add_challenge(&self, c: NewChallenge) -> Result<()> {
        self.write(&[], async move |db| {
            let (id, kind, bits, expires_at) = (&c.id, c.kind, c.bits, c.expires_at);
            match &c.answer_hash {
                None => {
                    db.execute(
                        "INSERT INTO challenges (id, kind, bits, expires_at) VALUES ($1, $2, $3, $4)",
                        args![id, kind, bits, expires_at],
                    )
                    .await
                }
                Some(hash) => {
                    db.execute(
                        "INSERT INTO challenges (id, kind, bits, expires_at, answer_hash)
                         VALUES ($1, $2, $3, $4, $5)",
                        args![id, kind, bits, expires_at, &hash[..]],
                    )
                    .await
                }
            }
            .map(drop)
        })
        .await
    }

    /// The difficulty of live work challenge `id`, which is used up.
    pub async fn redeem_work(&self, id: &str, now: i64) -> Result<Option<u32>> {
        let id = id.to_string();
        let bits = self
            .write(&[], async move |db| {
                db.int(
                    "DELETE FROM challenges WHERE id = $1 AND kind = 'work' AND expires_at > $2 RETURNING bits",
                    args![&id, now],
                )
                .await
            })
            .await?;
        Ok(bits.and_then(|b| u32::try_from(b).ok()))
    }

    /// The answer hash of live picture challenge `id`, which is used up.
    pub async fn redeem_image(&self, id: &str, now: i64) -> Result<Option<Vec<u8>>> {
        let id = id.to_string();
        self.write(&[], async move |db| {
            db.blob(
                "DELETE FROM challenges WHERE id = $1 AND kind = 'image' AND expires_at > $2 RETURNING answer_hash",
                args![&id, now],
            )
            .await
        })
        .await
    }
}
