//! Waiting without sleeping blindly: poll a condition until it holds or a
//! deadline passes, then fail with the last thing the condition saw.

use std::fmt::Display;
use std::future::Future;
use std::process::{Child, Output};
use std::time::{Duration, Instant};

/// How often a condition is looked at again: short enough that a test waits
/// little past the moment it holds, long enough not to load the machine.
const POLL: Duration = Duration::from_millis(25);

/// Polls `check` until it returns `Ok`, and returns that value. `Err` says what
/// was seen instead; the last one is the panic message after `within`.
pub async fn eventually<T, E, F, Fut>(within: Duration, mut check: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("not within {within:?}: {seen}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// `eventually` for code outside a runtime (starting helper processes, the
/// CLI tests): the same contract, blocking the thread between looks.
pub fn eventually_blocking<T, E: Display>(
    within: Duration,
    mut check: impl FnMut() -> Result<T, E>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => {
                panic!("not within {within:?}: {seen}")
            }
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Waits for `child` to exit and returns what it printed; after `within` it is
/// killed and `None` returned, so that a hanging process never outlives the
/// test. Polled more often than `eventually`: CLI tests run it hundreds of times.
pub fn output_within(mut child: Child, within: Duration) -> Option<Output> {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(child.wait_with_output().unwrap())
}
