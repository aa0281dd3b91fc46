//! Blocking work called from async code: a file opened, a registry
//! commit waiting for its fsync. On the server's multi-threaded runtime it
//! runs on the calling worker after handing that worker's other tasks to
//! another thread (`block_in_place`), so no other stream's task waits
//! behind a disk; elsewhere (a single-threaded test runtime, a plain
//! thread) it just runs.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `work`, which may block on I/O, without stalling other tasks.
pub fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}
