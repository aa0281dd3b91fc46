//! The replay ring buffer of one stream: whole GOPs (each starts at a
//! keyframe and holds the video and audio units up to the next keyframe)
//! with their PTS and wall-clock ranges. The media bytes are the shared
//! `Bytes` of the parsed buffers: nothing is copied into the ring.
//!
//! GOPs older than the window are evicted whole, and so are the oldest when
//! the byte budget is exceeded (logged: an eviction is never silent). With
//! no window (`entire_stream`) nothing is evicted: GOPs older than the
//! memory horizon, or past the budget, are handed to the caller to spill to
//! disk ([`super::spill`]); once written their bytes leave memory and are
//! read back on demand.
//! Readers take `Arc<Gop>` clones under a short lock and never block the
//! writer; they learn of new GOPs through a `watch` of the newest sequence.
//!
//! The segments made from a GOP for readers (MPEG-TS, fMP4) are kept only
//! while it is among the [`CACHED_GOPS`] newest, where live viewers ask
//! for the same ones: a replay subscriber from the live edge asks for
//! every GOP, and keeping all of them held the window twice. Older GOPs
//! are muxed again for each reader that rewinds to them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::spill_store::SpilledAt;
use crate::features::usage::OrgUsage;
use crate::media::{AccessUnit, TrackFormat};

/// The newest GOPs whose segments are kept once made.
pub const CACHED_GOPS: usize = 4;

impl Drop for ReplayBuffer {
    fn drop(&mut self) {
        let held = self.inner.get_mut().map_or(0, |inner| inner.bytes);
        self.count(-(held as i64));
    }
}

/// One group of pictures.
#[derive(Debug)]
pub struct Gop {
    pub sequence: u64,
    pub start_pts: Duration,
    pub end_pts: Duration,
    /// Wall-clock range (ms since the epoch) the GOP was received in.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Video and audio units, in arrival order (the first is a keyframe);
    /// `None` once spilled to disk.
    units: RwLock<Option<Arc<Vec<AccessUnit>>>>,
    /// Where the units are once spilled.
    spilled: OnceLock<SpilledAt>,
    /// The track format of the keyframe that starts the GOP: consecutive
    /// GOPs of another format follow a format change.
    pub format: Option<Arc<TrackFormat>>,
    pub bytes: usize,
    /// The GOP as MPEG-TS, made once when first asked for; dropped when
    /// the GOP is spilled.
    mpeg_ts: Mutex<Option<Bytes>>,
    /// The GOP as fragmented MP4 (init segment, fragment), made once when
    /// first asked for; dropped when the GOP is spilled.
    fmp4: Mutex<Option<(Bytes, Bytes)>>,
    /// Bytes of the cached segments above: they count against the
    /// buffer's memory budget like the media.
    cached: AtomicUsize,
    /// Whether segments made now are kept: cleared (and the cache
    /// dropped) once the GOP is no longer among the newest, or spilled.
    cacheable: AtomicBool,
}

impl Gop {
    pub fn duration(&self) -> Duration {
        self.end_pts.saturating_sub(self.start_pts)
    }

    /// The GOP's units: from memory, or read back from its spill file
    /// (blocking).
    pub fn units(&self) -> std::io::Result<Arc<Vec<AccessUnit>>> {
        if let Some(units) = self.units.read().expect("gop lock").as_ref() {
            return Ok(Arc::clone(units));
        }
        let spilled = self
            .spilled
            .get()
            .ok_or_else(|| std::io::Error::other("GOP has neither units nor a file"))?;
        spilled.read().map(Arc::new)
    }

    /// Whether the bytes are in memory.
    pub fn in_memory(&self) -> bool {
        self.units.read().expect("gop lock").is_some()
    }

    /// The MPEG-TS segment, made by `make` on first use and kept.
    pub fn mpeg_ts<E>(&self, make: impl FnOnce() -> Result<Bytes, E>) -> Result<Bytes, E> {
        self.cached(&self.mpeg_ts, make, |ts| ts.len())
    }

    /// The MPEG-TS segment, if it was made already.
    pub fn made_mpeg_ts(&self) -> Option<Bytes> {
        self.mpeg_ts.lock().expect("gop cache lock").clone()
    }

    /// The fMP4 (init, fragment), if it was made already.
    pub fn made_fmp4(&self) -> Option<(Bytes, Bytes)> {
        self.fmp4.lock().expect("gop cache lock").clone()
    }

    /// The fMP4 (init, fragment), made by `make` on first use and kept.
    pub fn fmp4<E>(
        &self,
        make: impl FnOnce() -> Result<(Bytes, Bytes), E>,
    ) -> Result<(Bytes, Bytes), E> {
        self.cached(&self.fmp4, make, |(i, f)| i.len() + f.len())
    }

    /// The value in `slot`, or made by `make` and kept there (its size
    /// counted) while the GOP is cacheable.
    fn cached<T: Clone, E>(
        &self,
        slot: &Mutex<Option<T>>,
        make: impl FnOnce() -> Result<T, E>,
        size: impl Fn(&T) -> usize,
    ) -> Result<T, E> {
        if let Some(value) = slot.lock().expect("gop cache lock").as_ref() {
            return Ok(value.clone());
        }
        // Made outside the lock: a second maker at the same moment only
        // wastes its work.
        let value = make()?;
        let mut held = slot.lock().expect("gop cache lock");
        if let Some(value) = held.as_ref() {
            return Ok(value.clone());
        }
        // Read under the slot's lock, which `drop_cache` takes after
        // clearing the flag: a value is never kept after the drop.
        if self.cacheable.load(Ordering::SeqCst) {
            self.cached.fetch_add(size(&value), Ordering::Relaxed);
            *held = Some(value.clone());
        }
        Ok(value)
    }

    /// Memory held for this GOP: media (while not spilled) and cached
    /// segments.
    fn memory(&self) -> usize {
        let media = if self.in_memory() { self.bytes } else { 0 };
        media + self.cached.load(Ordering::Relaxed)
    }

    /// Drops the cached segments, and keeps no more.
    fn drop_cache(&self) {
        self.cacheable.store(false, Ordering::SeqCst);
        *self.mpeg_ts.lock().expect("gop cache lock") = None;
        *self.fmp4.lock().expect("gop cache lock") = None;
        self.cached.store(0, Ordering::Relaxed);
    }
}

/// Where a reader stands relative to the buffer.
#[derive(Debug)]
pub enum Lookup {
    Found(Arc<Gop>),
    /// Evicted: the oldest GOP still held is this sequence.
    Evicted(u64),
    /// Not produced yet.
    Pending,
}

#[derive(Debug)]
struct Inner {
    gops: VecDeque<Arc<Gop>>,
    /// Media bytes in memory.
    bytes: usize,
    /// Media bytes spilled to disk.
    disk_bytes: usize,
    window: Option<Duration>,
    budget: usize,
    /// With no window: how much media stays in memory.
    memory_horizon: Duration,
    /// GOPs handed out to be spilled and not yet written.
    spilling: usize,
    next_sequence: u64,
    last_budget_warning: Option<Instant>,
    /// The session that filled the buffer has ended: no GOP will follow.
    session_ended: bool,
    /// The last spill failed (disk full or failing).
    spill_failing: bool,
}

/// Sizes of what the buffer holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Held {
    pub gops: usize,
    /// Bytes in memory: media, and segments made from it for readers.
    pub bytes: usize,
    /// Media bytes on disk (entire_stream).
    pub disk_bytes: usize,
    pub duration: Duration,
}

#[derive(Debug)]
pub struct ReplayBuffer {
    inner: Mutex<Inner>,
    newest: watch::Sender<u64>,
    label: String,
    /// The organization's replay memory, this buffer's media counted in
    /// it: past its quota, the buffer keeps within it like within its
    /// own budget.
    usage: Option<Arc<OrgUsage>>,
}

impl ReplayBuffer {
    /// An empty buffer that holds at most `budget` media bytes. `label`
    /// names the stream in eviction logs.
    pub fn new(budget: usize, memory_horizon: Duration, label: String) -> Self {
        Self {
            inner: Mutex::new(Inner {
                gops: VecDeque::new(),
                bytes: 0,
                disk_bytes: 0,
                window: Some(Duration::from_secs(60)),
                budget,
                memory_horizon,
                spilling: 0,
                next_sequence: 1,
                last_budget_warning: None,
                session_ended: false,
                spill_failing: false,
            }),
            newest: watch::channel(0).0,
            label,
            usage: None,
        }
    }

    /// Counts the buffer's media in its organization's replay memory
    /// (until it is dropped).
    pub fn counted_in(mut self, usage: Arc<OrgUsage>) -> Self {
        self.usage = Some(usage);
        self
    }

    /// Media bytes taken into (or let go of) memory.
    fn count(&self, bytes: i64) {
        if let Some(usage) = &self.usage {
            usage.add_replay(bytes);
        }
    }

    /// Whether the organization holds more than its replay quota.
    fn over_quota(&self) -> bool {
        self.usage.as_ref().is_some_and(|u| u.replay_over())
    }

    /// Sets the window (`None`: the whole session, within the budget) and
    /// evicts what falls outside it.
    pub fn set_window(&self, window: Option<Duration>) {
        let mut inner = self.inner.lock().expect("replay lock");
        inner.window = window;
        self.evict(&mut inner);
    }

    /// Drops everything (a new session, or replay turned off).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("replay lock");
        inner.gops.clear();
        self.count(-(inner.bytes as i64));
        inner.bytes = 0;
        inner.disk_bytes = 0;
    }

    /// Adds a complete GOP; returns its sequence number and, with no
    /// window, the GOPs that should now be spilled to disk.
    pub fn push(
        &self,
        mut units: Vec<AccessUnit>,
        end_pts: Duration,
        end_ms: i64,
    ) -> (u64, Vec<Arc<Gop>>) {
        // Gathered by pushing, the list has room for up to twice its
        // units; held for the whole window, that room is not free.
        units.shrink_to_fit();
        let first = &units[0];
        let start_pts = first.pts.unwrap_or_default();
        let format = first.format.clone();
        let bytes = units.iter().map(|u| u.data.len()).sum();
        let mut inner = self.inner.lock().expect("replay lock");
        let sequence = inner.next_sequence;
        inner.next_sequence += 1;
        let gop = Gop {
            sequence,
            start_pts,
            end_pts,
            start_ms: first.received_ms,
            end_ms,
            units: RwLock::new(Some(Arc::new(units))),
            spilled: OnceLock::new(),
            format,
            bytes,
            mpeg_ts: Mutex::new(None),
            fmp4: Mutex::new(None),
            cached: AtomicUsize::new(0),
            cacheable: AtomicBool::new(true),
        };
        inner.bytes += gop.bytes;
        self.count(gop.bytes as i64);
        inner.session_ended = false;
        inner.gops.push_back(Arc::new(gop));
        if let Some(aged) = inner
            .gops
            .len()
            .checked_sub(CACHED_GOPS + 1)
            .and_then(|i| inner.gops.get(i))
        {
            aged.drop_cache();
        }
        self.evict(&mut inner);
        let spill = self.to_spill(&mut inner);
        drop(inner);
        self.newest.send_replace(sequence);
        (sequence, spill)
    }

    /// With no window: the in-memory GOPs past the memory horizon or the
    /// budget (oldest first), not yet handed out.
    fn to_spill(&self, inner: &mut Inner) -> Vec<Arc<Gop>> {
        if inner.window.is_some() {
            return Vec::new();
        }
        let newest_end = inner.gops.back().map(|g| g.end_pts).unwrap_or_default();
        let mut memory = Self::memory(inner);
        let mut out = Vec::new();
        let candidates = inner.gops.len().saturating_sub(1);
        for gop in inner.gops.iter().take(candidates).skip(inner.spilling) {
            let old = newest_end.saturating_sub(gop.end_pts) >= inner.memory_horizon;
            if !(old || memory > inner.budget || self.over_quota()) {
                break;
            }
            if gop.in_memory() && gop.spilled.get().is_none() {
                memory = memory.saturating_sub(gop.memory());
                out.push(Arc::clone(gop));
            }
        }
        inner.spilling += out.len();
        out
    }

    /// Records that `gop` was written `at`: its bytes (and cached
    /// segments) leave memory.
    pub fn spilled(&self, gop: &Gop, at: SpilledAt) {
        let _ = gop.spilled.set(at);
        *gop.units.write().expect("gop lock") = None;
        gop.drop_cache();
        let mut inner = self.inner.lock().expect("replay lock");
        inner.spilling = inner.spilling.saturating_sub(1);
        inner.spill_failing = false;
        if inner.gops.iter().any(|g| g.sequence == gop.sequence) {
            inner.bytes = inner.bytes.saturating_sub(gop.bytes);
            self.count(-(gop.bytes as i64));
            inner.disk_bytes += gop.bytes;
        }
    }

    /// Records that `gop` could not be written: it stays in memory, and
    /// while spilling fails the budget is kept by evicting the oldest
    /// GOPs instead, so a failing disk never makes memory grow unbounded.
    pub fn spill_failed(&self, _gop: &Gop) {
        let mut inner = self.inner.lock().expect("replay lock");
        inner.spilling = inner.spilling.saturating_sub(1);
        inner.spill_failing = true;
        self.evict(&mut inner);
    }

    /// Memory in use: media in memory and cached segments.
    fn memory(inner: &Inner) -> usize {
        inner.gops.iter().map(|g| g.memory()).sum()
    }

    fn evict(&self, inner: &mut Inner) {
        let newest_end = inner.gops.back().map(|g| g.end_pts).unwrap_or_default();
        let mut by_window = 0;
        let mut by_budget = 0;
        while let Some(oldest) = inner.gops.front() {
            let too_old = inner
                .window
                .is_some_and(|w| newest_end.saturating_sub(oldest.end_pts) >= w);
            // Keep at least the newest GOP whatever the budget; with no
            // window the budget is kept by spilling, not evicting (unless
            // spilling fails).
            let too_big = (inner.window.is_some() || inner.spill_failing)
                && inner.gops.len() > 1
                && (Self::memory(inner) > inner.budget || self.over_quota());
            if !too_old && !too_big {
                break;
            }
            if too_old {
                by_window += 1;
            } else {
                by_budget += 1;
            }
            let gone = inner.gops.pop_front().expect("front");
            if gone.in_memory() {
                inner.bytes -= gone.bytes;
                self.count(-(gone.bytes as i64));
            } else {
                inner.disk_bytes = inner.disk_bytes.saturating_sub(gone.bytes);
            }
        }
        if by_window > 0 {
            tracing::debug!(stream = %self.label, gops = by_window, "replay: evicted GOPs older than the window");
        }
        if by_budget > 0 {
            let now = Instant::now();
            let quiet = inner
                .last_budget_warning
                .is_some_and(|t| now.duration_since(t) < Duration::from_secs(10));
            if !quiet {
                inner.last_budget_warning = Some(now);
                tracing::warn!(
                    stream = %self.label,
                    gops = by_budget,
                    budget_bytes = inner.budget,
                    "replay: evicted GOPs to stay within the memory budget"
                );
            }
        }
    }

    /// The GOP with `sequence`, or where the reader stands.
    pub fn get(&self, sequence: u64) -> Lookup {
        let inner = self.inner.lock().expect("replay lock");
        let Some(oldest) = inner.gops.front().map(|g| g.sequence) else {
            return if sequence < inner.next_sequence {
                Lookup::Evicted(inner.next_sequence)
            } else {
                Lookup::Pending
            };
        };
        if sequence < oldest {
            return Lookup::Evicted(oldest);
        }
        match inner.gops.get((sequence - oldest) as usize) {
            Some(gop) => Lookup::Found(Arc::clone(gop)),
            None => Lookup::Pending,
        }
    }

    /// Sequence of the oldest GOP held (or the next to come when empty).
    pub fn earliest(&self) -> u64 {
        let inner = self.inner.lock().expect("replay lock");
        inner
            .gops
            .front()
            .map_or(inner.next_sequence, |g| g.sequence)
    }

    /// Sequence the next GOP will have.
    pub fn next_sequence(&self) -> u64 {
        self.inner.lock().expect("replay lock").next_sequence
    }

    /// The first GOP that ends after `pred` says so, scanning oldest first.
    pub fn find(&self, pred: impl Fn(&Gop) -> bool) -> Option<Arc<Gop>> {
        let inner = self.inner.lock().expect("replay lock");
        inner.gops.iter().find(|g| pred(g)).cloned()
    }

    /// All GOPs from the one holding PTS `from` up to the one holding
    /// `to` (both clamped to what is held).
    pub fn range(&self, from: Duration, to: Duration) -> Vec<Arc<Gop>> {
        let inner = self.inner.lock().expect("replay lock");
        inner
            .gops
            .iter()
            .filter(|g| g.end_pts > from && g.start_pts < to)
            .cloned()
            .collect()
    }

    /// PTS and wall-clock edges of what is held: (oldest start, newest end).
    pub fn edges(&self) -> Option<((Duration, i64), (Duration, i64))> {
        let inner = self.inner.lock().expect("replay lock");
        let first = inner.gops.front()?;
        let last = inner.gops.back()?;
        Some((
            (first.start_pts, first.start_ms),
            (last.end_pts, last.end_ms),
        ))
    }

    pub fn held(&self) -> Held {
        let inner = self.inner.lock().expect("replay lock");
        Held {
            gops: inner.gops.len(),
            bytes: Self::memory(&inner),
            disk_bytes: inner.disk_bytes,
            duration: match (inner.gops.front(), inner.gops.back()) {
                (Some(a), Some(b)) => b.end_pts.saturating_sub(a.start_pts),
                _ => Duration::ZERO,
            },
        }
    }

    /// Follows the newest sequence (and the end of the session).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.newest.subscribe()
    }

    /// Marks that the session filling the buffer has ended (its last GOP
    /// is in): readers at the live edge are done.
    pub fn end_session(&self) {
        self.inner.lock().expect("replay lock").session_ended = true;
        self.newest.send_modify(|_| {});
    }

    /// Whether the session that filled the buffer has ended.
    pub fn session_ended(&self) -> bool {
        self.inner.lock().expect("replay lock").session_ended
    }
}

/// A reader's place in the buffer: the next GOP it wants, and how many it
/// lost to eviction since it last got one.
#[derive(Debug)]
pub struct Cursor {
    next: u64,
    skipped: u64,
}

impl Cursor {
    pub fn at(sequence: u64) -> Self {
        Self {
            next: sequence,
            skipped: 0,
        }
    }

    /// The next GOP with the number of GOPs skipped just before it, or
    /// `None` when the reader is at the live edge.
    pub fn advance(&mut self, buffer: &ReplayBuffer) -> Option<(Arc<Gop>, u64)> {
        loop {
            match buffer.get(self.next) {
                Lookup::Found(gop) => {
                    self.next += 1;
                    return Some((gop, std::mem::take(&mut self.skipped)));
                }
                Lookup::Evicted(oldest) => {
                    self.skipped += oldest - self.next;
                    self.next = oldest;
                }
                Lookup::Pending => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::Codec;

    fn unit(pts_ms: u64, keyframe: bool, size: usize) -> AccessUnit {
        AccessUnit {
            codec: Codec::H264,
            pts: Some(Duration::from_millis(pts_ms)),
            dts: Some(Duration::from_millis(pts_ms)),
            duration: Some(Duration::from_millis(1000)),
            keyframe,
            data: Bytes::from(vec![0u8; size]),
            format: None,
            received_ms: pts_ms as i64,
            discontinuity: false,
        }
    }

    fn push_gop(buffer: &ReplayBuffer, start_s: u64, size: usize) -> u64 {
        buffer
            .push(
                vec![unit(start_s * 1000, true, size)],
                Duration::from_secs(start_s + 1),
                (start_s as i64 + 1) * 1000,
            )
            .0
    }

    #[test]
    fn evicts_by_window_and_budget() {
        let buffer = ReplayBuffer::new(10_000, Duration::from_secs(600), "t".into());
        buffer.set_window(Some(Duration::from_secs(5)));
        for s in 0..10 {
            push_gop(&buffer, s, 100);
        }
        // Newest ends at 10 s: GOPs ending at or before 5 s are gone.
        assert_eq!(buffer.earliest(), 6);
        assert_eq!(buffer.held().gops, 5);
        assert!(matches!(buffer.get(2), Lookup::Evicted(6)));
        assert!(matches!(buffer.get(11), Lookup::Pending));

        buffer.set_window(Some(Duration::from_secs(3600)));
        for s in 10..40 {
            push_gop(&buffer, s, 1000);
        }
        let held = buffer.held();
        assert!(held.bytes <= 10_000, "{held:?}");
        assert_eq!(held.gops, 10);
    }

    #[test]
    fn a_reader_behind_the_eviction_point_is_told() {
        let buffer = ReplayBuffer::new(1 << 20, Duration::from_secs(600), "t".into());
        buffer.set_window(Some(Duration::from_secs(3)));
        let mut cursor = Cursor::at(buffer.earliest());
        push_gop(&buffer, 0, 10);
        let (gop, skipped) = cursor.advance(&buffer).unwrap();
        assert_eq!((gop.sequence, skipped), (1, 0));
        assert!(cursor.advance(&buffer).is_none());
        for s in 1..10 {
            push_gop(&buffer, s, 10);
        }
        // GOPs 2..=7 were evicted while it did not read.
        let (gop, skipped) = cursor.advance(&buffer).unwrap();
        assert_eq!((gop.sequence, skipped), (8, 6));
        let (gop, skipped) = cursor.advance(&buffer).unwrap();
        assert_eq!((gop.sequence, skipped), (9, 0));
    }

    #[test]
    fn a_failing_spill_keeps_memory_within_the_budget() {
        // 1000 bytes of budget, GOPs of 150 bytes, everything older than
        // 1 s due to go to disk, and a disk that refuses every write.
        let buffer = ReplayBuffer::new(1000, Duration::from_secs(1), "t".into());
        buffer.set_window(None);
        for s in 0..40 {
            let (_, spill) = buffer.push(
                vec![unit(s * 1000, true, 100), unit(s * 1000 + 500, false, 50)],
                Duration::from_secs(s + 1),
                (s as i64 + 1) * 1000,
            );
            for gop in spill {
                buffer.spill_failed(&gop);
            }
            let held = buffer.held();
            assert!(held.bytes <= 1000, "after {s}: {held:?}");
        }
        let held = buffer.held();
        assert_eq!(held.disk_bytes, 0);
        assert!(held.gops >= 6, "{held:?}");
        // The disk comes back: spilling resumes.
        let (_, spill) = buffer.push(
            vec![unit(40_000, true, 100)],
            Duration::from_secs(41),
            41_000,
        );
        assert!(!spill.is_empty());
    }

    #[test]
    fn only_the_newest_gops_keep_their_segments() {
        let buffer = ReplayBuffer::new(1 << 20, Duration::from_secs(60), "t".into());
        let push = |s: u64| {
            buffer.push(
                vec![unit(s * 1000, true, 100)],
                Duration::from_secs(s + 1),
                (s as i64 + 1) * 1000,
            )
        };
        let ts = || Ok::<_, ()>(Bytes::from(vec![0u8; 50]));
        let (sequence, _) = push(0);
        let Lookup::Found(first) = buffer.get(sequence) else {
            panic!()
        };
        first.mpeg_ts(ts).unwrap();
        assert_eq!(buffer.held().bytes, 150);
        for s in 1..CACHED_GOPS as u64 {
            push(s);
        }
        assert_eq!(first.made_mpeg_ts().map(|b| b.len()), Some(50));
        // One more: the first is no longer among the newest.
        push(CACHED_GOPS as u64);
        assert_eq!(first.made_mpeg_ts(), None);
        assert_eq!(buffer.held().bytes, 100 * (CACHED_GOPS + 1));
        // Asked again (a viewer rewinding), it is made, not kept.
        assert_eq!(first.mpeg_ts(ts).unwrap().len(), 50);
        assert_eq!(first.made_mpeg_ts(), None);
        assert_eq!(buffer.held().bytes, 100 * (CACHED_GOPS + 1));
    }

    #[test]
    fn cached_segments_count_against_the_budget_and_leave_with_a_spill() {
        let buffer = ReplayBuffer::new(1000, Duration::from_secs(60), "t".into());
        for s in 0..4 {
            buffer.push(
                vec![unit(s * 1000, true, 100)],
                Duration::from_secs(s + 1),
                (s as i64 + 1) * 1000,
            );
        }
        assert_eq!(buffer.held().bytes, 400);
        let Lookup::Found(gop) = buffer.get(2) else {
            panic!()
        };
        let ts = gop
            .mpeg_ts(|| Ok::<_, ()>(Bytes::from(vec![0u8; 300])))
            .unwrap();
        assert_eq!(ts.len(), 300);
        // Made once: the second maker is not called.
        gop.mpeg_ts(|| -> Result<Bytes, ()> { panic!("made twice") })
            .unwrap();
        assert_eq!(buffer.held().bytes, 700);
        // Past the budget with the cache counted: the oldest GOPs go.
        for s in 4..7 {
            buffer.push(
                vec![unit(s * 1000, true, 100)],
                Duration::from_secs(s + 1),
                (s as i64 + 1) * 1000,
            );
        }
        assert!(buffer.held().bytes <= 1000, "{:?}", buffer.held());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.gop");
        super::super::spill::write(&path, &gop.units().unwrap()).unwrap();
        buffer.spilled(&gop, SpilledAt::File(path));
        assert_eq!(gop.memory(), 0);
    }

    #[test]
    fn entire_stream_spills_instead_of_evicting() {
        let dir = tempfile::tempdir().unwrap();
        let buffer = ReplayBuffer::new(1 << 20, Duration::from_secs(3), "t".into());
        buffer.set_window(None);
        let mut written = 0;
        for s in 0..10 {
            let (_, spill) = buffer.push(
                vec![unit(s * 1000, true, 100), unit(s * 1000 + 500, false, 50)],
                Duration::from_secs(s + 1),
                (s as i64 + 1) * 1000,
            );
            for gop in spill {
                let path = dir.path().join(format!("{}.gop", gop.sequence));
                super::super::spill::write(&path, &gop.units().unwrap()).unwrap();
                buffer.spilled(&gop, SpilledAt::File(path));
                written += 1;
            }
        }
        // Newest ends at 10 s: GOPs ending 7 s or more before it are on disk.
        assert_eq!(written, 7);
        let held = buffer.held();
        assert_eq!((held.gops, held.bytes, held.disk_bytes), (10, 450, 1050));
        // Read back transparently, identical.
        let Lookup::Found(first) = buffer.get(1) else {
            panic!()
        };
        assert!(!first.in_memory());
        let units = first.units().unwrap();
        assert_eq!(units.len(), 2);
        assert_eq!(units[1].pts, Some(Duration::from_millis(500)));
        assert!(!units[1].keyframe && units[0].keyframe);
        assert_eq!(units[0].data.len(), 100);
    }

    #[test]
    fn ranges_and_lookups() {
        let buffer = ReplayBuffer::new(1 << 20, Duration::from_secs(600), "t".into());
        buffer.set_window(None);
        for s in 0..10 {
            push_gop(&buffer, s, 10);
        }
        let range = buffer.range(Duration::from_millis(2500), Duration::from_millis(5000));
        let starts: Vec<u64> = range.iter().map(|g| g.start_pts.as_secs()).collect();
        assert_eq!(starts, [2, 3, 4]);
        let Lookup::Found(gop) = buffer.get(4) else {
            panic!()
        };
        assert_eq!(gop.start_pts, Duration::from_secs(3));
        assert_eq!(buffer.edges().unwrap().1 .0, Duration::from_secs(10));
    }
}
