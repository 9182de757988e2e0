//! `CHALLENGE`, `CHALLENGE_AFTER`, `CHALLENGE_BITS`: when `send-code` needs a
//! solved challenge, and how hard the proof of work is.

use super::{ConfigError, Source};

/// When `send-code` needs a solved challenge (`CHALLENGE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeMode {
    Off,
    /// From a client network past `CHALLENGE_AFTER` sends an hour, and from
    /// everyone while the global rate is over half its cap.
    Auto,
    Always,
}

/// `CHALLENGE`, `CHALLENGE_AFTER`, `CHALLENGE_BITS`.
#[derive(Clone, Copy, Debug)]
pub struct ChallengeSettings {
    pub mode: ChallengeMode,
    pub after: i64,
    pub bits: u32,
}

impl ChallengeSettings {
    pub(super) fn from_source(src: &Source) -> Result<Self, ConfigError> {
        let mode = src.parsed(
            "CHALLENGE",
            |s| match s {
                "off" => Some(ChallengeMode::Off),
                "auto" => Some(ChallengeMode::Auto),
                "always" => Some(ChallengeMode::Always),
                _ => None,
            },
            "off, auto, always",
        )?;
        Ok(Self {
            mode: mode.unwrap_or(ChallengeMode::Auto),
            after: src.num("CHALLENGE_AFTER", 3, 0..=1_000_000)?,
            bits: src.num("CHALLENGE_BITS", 18, 8..=30)?,
        })
    }
}
