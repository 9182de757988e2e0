//! Turns: all tests share one process and run side by side (four at a time
//! under `scripts/test`). A few measure time, memory or open files of their app
//! (timing medians within 5 %, 1,100 held connections, a login flood with a
//! 2 s bound); beside other apps they would measure the neighbours. Every app
//! started through the builder holds a turn: a shared one normally, the only
//! one for `.exclusive()` apps, which wait until no other app runs.
//!
//! Shared turns never wait for a waiting exclusive one (a test that starts a
//! second app while holding a turn must not block behind a writer that waits
//! for it): exclusive tests may wait longer, nothing can deadlock. An exclusive
//! test starts one app only.

use std::sync::Mutex;

use tokio::sync::Notify;

struct State {
    shared: usize,
    exclusive: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    shared: 0,
    exclusive: false,
});

/// Wakes the apps waiting for a turn whenever one is given back.
static GIVEN_BACK: Notify = Notify::const_new();

/// Held for the life of a `TestApp`; gives its turn back when dropped.
pub struct Turn {
    exclusive: bool,
}

impl Turn {
    pub async fn take(exclusive: bool) -> Turn {
        loop {
            // Registered before the check, so that a turn given back in
            // between still wakes this one.
            let given_back = GIVEN_BACK.notified();
            tokio::pin!(given_back);
            given_back.as_mut().enable();
            if Self::try_take(exclusive) {
                return Turn { exclusive };
            }
            given_back.await;
        }
    }

    fn try_take(exclusive: bool) -> bool {
        let mut state = STATE.lock().unwrap();
        match (exclusive, state.exclusive, state.shared) {
            (_, true, _) => false,
            (true, false, 0) => {
                state.exclusive = true;
                true
            }
            (true, false, _) => false,
            (false, false, _) => {
                state.shared += 1;
                true
            }
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut state = STATE.lock().unwrap();
        if self.exclusive {
            state.exclusive = false;
        } else {
            state.shared -= 1;
        }
        GIVEN_BACK.notify_waiters();
    }
}
