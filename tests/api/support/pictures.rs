//! Reading a picture challenge as a person would, without looking at it: the
//! digits are stored only as a keyed hash, and a test that knows `SECRET_KEY`
//! finds the five digits whose hash is the stored one.

use authmail::keys::Keys;

use super::db::TestDb;

/// The `SECRET_KEY` tests that read pictures start the app with.
pub const SECRET: &str = "picture-test-secret-0123456789abcdef";

/// The digits of live picture challenge `id`; `None` when there is no such
/// challenge (redeemed, expired, or not a picture).
pub async fn digits(db: &TestDb, secret: &str, id: &str) -> Option<String> {
    // The id goes into SQL: a challenge id is hex.
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "not a challenge id: {id:?}"
    );
    let sql = format!("SELECT answer_hash FROM challenges WHERE id = '{id}' AND kind = 'image'");
    let stored = db.blobs(&sql).await.into_iter().next()?;
    let keys = Keys::new(secret);
    // The font has no 0: five of 1-9.
    let digits = (0..9u32.pow(5)).map(|mut n| {
        (0..5)
            .map(|_| {
                let d = char::from(b'1' + (n % 9) as u8);
                n /= 9;
                d
            })
            .collect::<String>()
    });
    let found = digits
        .into_iter()
        .find(|d| keys.challenge_answer_hash(id, d)[..] == stored[..]);
    Some(found.expect("the stored hash is of five digits 1-9"))
}
