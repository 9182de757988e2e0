//! Turns: all tests now share one process and run side by side, as many as
//! there are CPUs. A few measure time, memory or open files of their app
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
use std::time::Duration;

struct State {
    shared: usize,
    exclusive: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    shared: 0,
    exclusive: false,
});

/// Held for the life of a `TestApp`; gives its turn back when dropped.
pub struct Turn {
    exclusive: bool,
}

impl Turn {
    pub async fn take(exclusive: bool) -> Turn {
        loop {
            if Self::try_take(exclusive) {
                return Turn { exclusive };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
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
    }
}
