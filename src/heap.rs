//! Gives the heap's free memory back to the system.
//!
//! glibc's malloc keeps what is freed in its arenas for reuse and returns
//! pages to the system only from the top of a heap. Media churns through
//! the heap in small pieces (access units, replay GOPs, segments), so once
//! streams end most freed memory sits below live allocations and stays
//! resident: after 20 streams of 1080p with every feature were published
//! for a minute and deleted, the server held 1.4 GB of anonymous memory,
//! and `malloc_trim` brought it to 41 MB (the same experiment with
//! jemalloc kept 134 MB; with fixed mmap/trim thresholds and two arenas,
//! 82 MB).
//!
//! A thread looks every [`LOOK_EVERY`]: when the anonymous memory resident
//! exceeds what malloc has in use by more than [`TRIM_ABOVE`] and by more
//! than a quarter of it, it trims; free pages go back to the system
//! (`MADV_DONTNEED`) and the chunks stay usable. In a steady state the
//! ring buffers reuse what they free: releasing pages that are about to
//! be reused only costs page faults, so trims come at most once a minute
//! unless the heap shrank since the last one (streams ended: what they
//! held is not coming back).
//!
//! Trimming returns only whole free pages. glibc gives each thread that
//! meets a locked arena a new one, up to 8 per core, and memory freed in
//! many arenas is scattered among live chunks; [`limit_arenas`] (set at
//! start, `--malloc-arenas`) keeps it in a few. At 8 streams on 2 cores two
//! arenas cost no CPU (0.47 % of a core per stream against 0.53-0.60 with
//! glibc's default) and held a smoke soak's RSS flat (+0.07 MB a cycle
//! against +0.21).

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics;

/// How often the thread looks at the heap.
pub const LOOK_EVERY: Duration = Duration::from_secs(10);
/// Free resident memory below this is left alone.
const TRIM_ABOVE: u64 = 16 * 1024 * 1024;
/// Least time between two trims while the heap has not shrunk.
const MIN_BETWEEN: Duration = Duration::from_secs(60);

/// The last trim: when, and what malloc had in use then.
#[derive(Clone, Copy)]
struct LastTrim {
    at: Instant,
    in_use: u64,
}

/// Lets malloc make at most `arenas` arenas (0: leave its default). Call
/// before other threads start: an arena, once made, stays.
pub fn limit_arenas(arenas: usize) {
    if arenas > 0 {
        allocator::limit_arenas(arenas);
    }
}

/// Starts the thread that trims the heap until `shutdown`.
pub fn start(shutdown: CancellationToken) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("liveproc-heap".into())
        .spawn(move || {
            let mut last_trim: Option<LastTrim> = None;
            while !shutdown.is_cancelled() {
                std::thread::sleep(LOOK_EVERY);
                last_trim = look(last_trim).or(last_trim);
            }
        })
}

/// Trims when the resident memory malloc does not use is worth it; the
/// trim, if it did.
fn look(last_trim: Option<LastTrim>) -> Option<LastTrim> {
    let resident = resident_anonymous_bytes()?;
    let in_use = allocator::in_use_bytes();
    let idle = resident.saturating_sub(in_use);
    metrics::get().heap_idle_bytes.set(idle as i64);
    if in_use != u64::MAX {
        metrics::get().heap_in_use_bytes.set(in_use as i64);
    }
    if !worth_trimming(idle, in_use, last_trim.map(|t| (t.at.elapsed(), t.in_use))) {
        return None;
    }
    let started = Instant::now();
    allocator::trim();
    let after = resident_anonymous_bytes().unwrap_or(resident);
    let returned = resident.saturating_sub(after);
    metrics::get().heap_returned_bytes.inc_by(returned);
    tracing::debug!(
        returned_mib = returned / (1024 * 1024),
        in_use_mib = in_use / (1024 * 1024),
        took_ms = started.elapsed().as_millis() as u64,
        "returned free heap memory to the system"
    );
    Some(LastTrim {
        at: started,
        in_use,
    })
}

/// Whether `idle` resident bytes beside `in_use` ones are worth a trim,
/// given how long ago the last one was and what was in use then.
fn worth_trimming(idle: u64, in_use: u64, last: Option<(Duration, u64)>) -> bool {
    if idle < TRIM_ABOVE || idle < in_use / 4 {
        return false;
    }
    match last {
        None => true,
        Some((ago, _)) if ago >= MIN_BETWEEN => true,
        // Recently: only if the heap shrank by more than is left alone
        // (work ended), or more is idle than in use.
        Some((_, in_use_then)) => in_use + TRIM_ABOVE < in_use_then || idle >= in_use,
    }
}

/// `RssAnon` of this process, bytes.
fn resident_anonymous_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("RssAnon:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod allocator {
    /// Bytes malloc has handed out and not had back (its arenas and its
    /// own mappings).
    pub fn in_use_bytes() -> u64 {
        // SAFETY: mallinfo2 takes no arguments, only reads the allocator's
        // state under its own locks, and returns a plain struct by value.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as u64
    }

    /// Makes malloc share at most `arenas` arenas among all threads.
    pub fn limit_arenas(arenas: usize) {
        let arenas = libc::c_int::try_from(arenas).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets a parameter of the allocator under its
        // lock; M_ARENA_MAX takes any positive count.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
        }
    }

    /// Returns every free page of every arena to the system.
    pub fn trim() {
        // SAFETY: malloc_trim takes the pad to keep (0: none), locks each
        // arena while it works, and only releases pages of free chunks.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Other allocators return memory by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod allocator {
    pub fn in_use_bytes() -> u64 {
        u64::MAX
    }

    pub fn trim() {}

    pub fn limit_arenas(_arenas: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_when_worth_it_and_not_again_in_a_steady_state() {
        const MIB: u64 = 1024 * 1024;
        let recently = Duration::from_secs(20);
        // Too little idle, absolutely or beside what is in use.
        assert!(!worth_trimming(15 * MIB, 10 * MIB, None));
        assert!(!worth_trimming(100 * MIB, 500 * MIB, None));
        assert!(worth_trimming(130 * MIB, 500 * MIB, None));
        // A steady heap trimmed 20 s ago: not again for a minute.
        assert!(!worth_trimming(
            130 * MIB,
            500 * MIB,
            Some((recently, 500 * MIB))
        ));
        assert!(worth_trimming(
            130 * MIB,
            500 * MIB,
            Some((MIN_BETWEEN, 500 * MIB))
        ));
        // Streams ended since: the heap shrank, or more is idle than used.
        assert!(worth_trimming(
            30 * MIB,
            42 * MIB,
            Some((recently, 90 * MIB))
        ));
        assert!(!worth_trimming(
            30 * MIB,
            42 * MIB,
            Some((recently, 50 * MIB))
        ));
        assert!(worth_trimming(
            50 * MIB,
            42 * MIB,
            Some((recently, 42 * MIB))
        ));
    }

    #[test]
    fn a_trim_returns_what_was_freed() {
        // Many small blocks, the way media lands in the heap, and one more
        // kept after them so that the heap cannot shrink from its top.
        let blocks: Vec<Vec<u8>> = (0..100_000).map(|i| vec![i as u8; 1500]).collect();
        let keep = std::hint::black_box(vec![1u8; 1500]);
        drop(blocks);
        let freed = resident_anonymous_bytes().unwrap();
        allocator::trim();
        let trimmed = resident_anonymous_bytes().unwrap();
        assert!(
            freed.saturating_sub(trimmed) > 100 * 1024 * 1024,
            "trim returned {} bytes of the 150 MB freed",
            freed.saturating_sub(trimmed)
        );
        drop(keep);
    }
}
