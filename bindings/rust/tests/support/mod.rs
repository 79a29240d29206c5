//! Helpers shared by the integration tests. Every wait is bounded: a test
//! that would hang fails with a message instead.
#![allow(dead_code)] // each test file uses some of these

pub mod cfuture;
pub mod probe;
pub mod rust_executor;

use std::time::{Duration, Instant};

/// The bound on every wait in the tests: far above what any of them needs.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `condition` until it holds or TIMEOUT passes; false on timeout.
pub fn wait_until(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    condition()
}
