//! Time as authmail stores it (Unix seconds, UTC) and shows it (RFC 3339).
//!
//! The current time comes in through a [`Clock`] held in the shared state,
//! never fetched on the spot, so a test can move time on (past a code's
//! expiry, a lock window, the retention period) instead of rewriting
//! timestamps in the database and restarting.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Where "now" comes from: the system clock, or one that tests set.
#[derive(Debug, Clone)]
pub struct Clock(Source);

#[derive(Debug, Clone)]
enum Source {
    System,
    /// Shared by every clone, so moving it moves it for the whole app.
    Manual(Arc<AtomicI64>),
}

impl Clock {
    pub fn system() -> Self {
        Self(Source::System)
    }

    /// A clock that stands at `start` (Unix seconds) until set or advanced.
    pub fn manual(start: i64) -> Self {
        Self(Source::Manual(Arc::new(AtomicI64::new(start))))
    }

    /// Unix seconds, UTC.
    pub fn now(&self) -> i64 {
        match &self.0 {
            Source::System => OffsetDateTime::now_utc().unix_timestamp(),
            Source::Manual(secs) => secs.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock to `secs`.
    ///
    /// # Panics
    /// On the system clock: a test that thinks it controls time but does not
    /// would pass or fail by chance.
    pub fn set(&self, secs: i64) {
        self.manual_secs().store(secs, Ordering::SeqCst);
    }

    /// Moves a manual clock on by `secs` (back, when negative).
    ///
    /// # Panics
    /// On the system clock, as [`Clock::set`].
    pub fn advance(&self, secs: i64) {
        self.manual_secs().fetch_add(secs, Ordering::SeqCst);
    }

    fn manual_secs(&self) -> &AtomicI64 {
        match &self.0 {
            Source::Manual(secs) => secs,
            Source::System => {
                panic!("the system clock cannot be set; build the app with Clock::manual")
            }
        }
    }
}

pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_manual_clock_moves_only_when_told_and_for_every_clone() {
        let clock = Clock::manual(1_000);
        let held = clock.clone();
        assert_eq!(clock.now(), 1_000);
        clock.advance(301);
        assert_eq!(held.now(), 1_301, "clones share the time");
        held.set(5);
        assert_eq!(clock.now(), 5);
        clock.advance(-5);
        assert_eq!(clock.now(), 0);
    }

    #[test]
    fn the_system_clock_is_now() {
        let before = time::OffsetDateTime::now_utc().unix_timestamp();
        let now = Clock::system().now();
        let after = time::OffsetDateTime::now_utc().unix_timestamp();
        assert!((before..=after).contains(&now));
    }

    #[test]
    #[should_panic(expected = "cannot be set")]
    fn the_system_clock_cannot_be_moved() {
        Clock::system().advance(1);
    }
}
