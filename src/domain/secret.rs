//! Values a user types that must never be logged: passwords and codes.

use std::fmt;

/// A password within the contract's bounds (8 to 1024 characters).
pub struct Password(String);

#[derive(Debug, thiserror::Error)]
#[error("a password must be 8 to 1024 characters")]
pub struct WeakPassword;

impl Password {
    pub fn parse(raw: String) -> Result<Self, WeakPassword> {
        match raw.chars().count() {
            8..=1024 => Ok(Self(raw)),
            _ => Err(WeakPassword),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A verification code as submitted or generated: digits only. Whether it is
/// the *right* code is for `codes` to decide; this only guarantees its shape.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

impl Code {
    /// A submitted code of the configured shape. One of another shape can never
    /// match, so it is refused before any stored code is looked at and costs no guess.
    pub fn parse(raw: &str, len: u8) -> Option<Self> {
        (raw.len() == usize::from(len) && raw.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(raw.to_string()))
    }

    /// A fresh code of `len` digits from the OS's cryptographic generator.
    pub fn generate(len: u8) -> Self {
        use rand::Rng;
        let mut rng = rand::rngs::OsRng;
        Self(
            (0..len)
                .map(|_| char::from(b'0' + rng.gen_range(0..10)))
                .collect(),
        )
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_digits_of_the_right_length() {
        for len in 4..=10 {
            let c = Code::generate(len);
            assert_eq!(c.expose().len(), usize::from(len));
            assert!(c.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn generated_codes_cover_every_digit() {
        let all: String = (0..200).map(|_| Code::generate(6).0).collect();
        for d in '0'..='9' {
            assert!(all.contains(d), "digit {d} never generated");
        }
    }

    #[test]
    fn password_bounds_count_characters() {
        assert!(Password::parse("1234567".into()).is_err());
        assert!(Password::parse("12345678".into()).is_ok());
        assert!(Password::parse("密码密码密码密码".into()).is_ok());
        assert!(Password::parse("x".repeat(1025)).is_err());
        assert!(Password::parse("x".repeat(1024)).is_ok());
    }
}
