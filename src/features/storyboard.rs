//! A stream's storyboard: small pictures (tiles) of its replay window for
//! timeline hover previews, as WebVTT cues pointing into sprite sheets.
//!
//! Time is cut into slots of [`Layout::interval`] on the wall clock (from
//! the epoch, so a slot's number never changes); a slot's tile is the
//! keyframe of the first GOP received in it. Tiles are made on demand,
//! when a storyboard is asked for, from the GOPs the replay buffer holds,
//! and kept (a JPEG of a few kilobytes each) until their GOP leaves the
//! window: a stream nobody scrubs costs nothing, and one many viewers
//! scrub costs one keyframe decode per slot. Sheet `n` holds slots
//! `n·C·R .. (n+1)·C·R` in a grid of C columns and R rows, at fixed places,
//! so a cue's `#xywh` never changes; a sheet is composed from its tiles
//! when asked, and kept until its tiles change.
//!
//! A cue runs from its tile's GOP start to the next tile's (the last one
//! to the window's end), so the cues cover the window without gaps. Cue
//! times are seconds since the session's start (the wall-clock time the
//! VTT names in a `NOTE`), the same clock as the replay playlist's
//! `EXT-X-PROGRAM-DATE-TIME`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

use super::replay::buffer::Gop;
use crate::media::{MediaError, MediaResult};

/// How tiles are cut and laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Wall-clock time per slot (a tile at most this often).
    pub interval: Duration,
    /// Tile width in pixels; the height keeps the picture's aspect.
    pub tile_width: u32,
    pub columns: u32,
    pub rows: u32,
}

impl Layout {
    pub const DEFAULT: Layout = Layout {
        interval: Duration::from_secs(5),
        tile_width: 160,
        columns: 5,
        rows: 5,
    };

    fn interval_ms(&self) -> i64 {
        (self.interval.as_millis() as i64).max(1)
    }

    /// The slot of a wall-clock time.
    pub fn slot(&self, time_ms: i64) -> i64 {
        time_ms.div_euclid(self.interval_ms())
    }

    fn per_sheet(&self) -> i64 {
        i64::from(self.columns * self.rows).max(1)
    }

    /// The sheet holding `slot`, and the tile's column and row there.
    pub fn place(&self, slot: i64) -> (i64, u32, u32) {
        let index = slot.rem_euclid(self.per_sheet()) as u32;
        (
            slot.div_euclid(self.per_sheet()),
            index % self.columns,
            index / self.columns,
        )
    }
}

/// One tile: a slot's keyframe, small.
#[derive(Debug, Clone)]
pub struct Tile {
    /// The GOP it was made from.
    pub gop: u64,
    /// When that GOP starts (ms since the epoch).
    pub start_ms: i64,
    pub width: u32,
    pub height: u32,
    pub jpeg: Bytes,
}

/// A composed sheet and the tiles it was made of.
struct Sheet {
    made_of: Vec<(i64, u64)>,
    jpeg: Bytes,
}

/// The tiles and sheets of one stream.
pub struct Storyboard {
    layout: Layout,
    tiles: Mutex<BTreeMap<i64, Arc<Tile>>>,
    sheets: Mutex<BTreeMap<i64, Arc<Sheet>>>,
    /// Held while tiles are made, so that each is made once.
    pub making: tokio::sync::Mutex<()>,
}

/// Sheets of finished sessions' storyboards, the most recently made
/// [`SessionSheets::KEPT`] (a finished session's sheet never changes).
#[derive(Default)]
pub struct SessionSheets(Mutex<std::collections::VecDeque<((String, i64), Bytes)>>);

impl SessionSheets {
    const KEPT: usize = 16;

    pub fn get(&self, session: &str, n: i64) -> Option<Bytes> {
        let kept = self.0.lock().expect("session sheets lock");
        kept.iter()
            .find(|((s, m), _)| s == session && *m == n)
            .map(|(_, jpeg)| jpeg.clone())
    }

    pub fn put(&self, session: &str, n: i64, jpeg: Bytes) {
        let mut kept = self.0.lock().expect("session sheets lock");
        if kept.len() == Self::KEPT {
            kept.pop_front();
        }
        kept.push_back(((session.to_string(), n), jpeg));
    }
}

/// A GOP whose slot has no tile yet.
pub struct Wanted {
    pub slot: i64,
    pub gop: Arc<Gop>,
}

impl Storyboard {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            tiles: Mutex::default(),
            sheets: Mutex::default(),
            making: tokio::sync::Mutex::new(()),
        }
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Forgets the tiles of GOPs no longer in `window` (oldest first), and
    /// says which slots of it have no tile yet, with the GOP to make it of.
    pub fn refresh(&self, window: &[Arc<Gop>]) -> Vec<Wanted> {
        let earliest = window.first().map_or(u64::MAX, |g| g.sequence);
        let mut tiles = self.tiles.lock().expect("storyboard lock");
        tiles.retain(|_, tile| tile.gop >= earliest);
        let mut wanted: Vec<Wanted> = Vec::new();
        for gop in window {
            let slot = self.layout.slot(gop.start_ms);
            if tiles.contains_key(&slot) || wanted.last().is_some_and(|w| w.slot == slot) {
                continue;
            }
            wanted.push(Wanted {
                slot,
                gop: Arc::clone(gop),
            });
        }
        drop(tiles);
        let first_sheet = window
            .first()
            .map(|g| self.layout.place(self.layout.slot(g.start_ms)).0);
        self.sheets
            .lock()
            .expect("storyboard lock")
            .retain(|&n, _| first_sheet.is_some_and(|first| n >= first));
        wanted
    }

    pub fn insert(&self, slot: i64, tile: Tile) {
        self.tiles
            .lock()
            .expect("storyboard lock")
            .insert(slot, Arc::new(tile));
    }

    /// The tiles held, by slot.
    pub fn tiles(&self) -> Vec<(i64, Arc<Tile>)> {
        let tiles = self.tiles.lock().expect("storyboard lock");
        tiles.iter().map(|(&s, t)| (s, Arc::clone(t))).collect()
    }

    /// The WebVTT of the tiles held, over a window ending at `end_ms`;
    /// cue times from `origin_ms`; `sheet_url` names a sheet.
    pub fn vtt(&self, end_ms: i64, origin_ms: i64, sheet_url: impl Fn(i64) -> String) -> String {
        let tiles = self.tiles();
        let mut out = vtt_header(origin_ms);
        // Tiles come in slot order, a sheet's together: its cell is
        // found once, at its first tile.
        let mut sheet_cell = None;
        for (i, (slot, tile)) in tiles.iter().enumerate() {
            let end = tiles.get(i + 1).map_or(end_ms, |(_, next)| next.start_ms);
            if end <= tile.start_ms {
                continue;
            }
            let sheet = self.layout.place(*slot).0;
            let cue = (tile.start_ms - origin_ms, end - origin_ms);
            let cell = match sheet_cell {
                Some((of, cell)) if of == sheet => cell,
                _ => {
                    let cell = self.cell(sheet, &tiles[i..]);
                    sheet_cell = Some((sheet, cell));
                    cell
                }
            };
            write_cue(&mut out, &self.layout, *slot, cue, &sheet_url(sheet), cell);
        }
        out
    }

    /// A sheet's cell size: its first tile's picture (tiles of another
    /// aspect are cropped or padded to it).
    fn cell(&self, sheet: i64, tiles: &[(i64, Arc<Tile>)]) -> (u32, u32) {
        tiles
            .iter()
            .find(|(slot, _)| self.layout.place(*slot).0 == sheet)
            .map_or(
                (self.layout.tile_width, self.layout.tile_width * 9 / 16),
                |(_, t)| (t.width, t.height),
            )
    }

    /// Sheet `n` as a JPEG, composed from the tiles held (kept until they
    /// change); `None` when it has no tile. Blocking when it composes.
    pub fn sheet(&self, n: i64) -> MediaResult<Option<Bytes>> {
        let tiles: Vec<(i64, Arc<Tile>)> = self
            .tiles()
            .into_iter()
            .filter(|(slot, _)| self.layout.place(*slot).0 == n)
            .collect();
        if tiles.is_empty() {
            return Ok(None);
        }
        let made_of: Vec<(i64, u64)> = tiles.iter().map(|(s, t)| (*s, t.gop)).collect();
        if let Some(kept) = self.sheets.lock().expect("storyboard lock").get(&n) {
            if kept.made_of == made_of {
                return Ok(Some(kept.jpeg.clone()));
            }
        }
        let cell = self.cell(n, &tiles);
        let placed: Vec<(i64, &Bytes)> = tiles.iter().map(|(slot, t)| (*slot, &t.jpeg)).collect();
        let jpeg = compose(&self.layout, cell, &placed)?;
        self.sheets.lock().expect("storyboard lock").insert(
            n,
            Arc::new(Sheet {
                made_of,
                jpeg: jpeg.clone(),
            }),
        );
        Ok(Some(jpeg))
    }
}

/// A sheet of `layout` with cells of `cell`, each tile (a JPEG) at its
/// slot's place; places without a tile stay black. Blocking.
pub fn compose(layout: &Layout, cell: (u32, u32), tiles: &[(i64, &Bytes)]) -> MediaResult<Bytes> {
    let size = (cell.0 * layout.columns, cell.1 * layout.rows);
    let mut canvas = vec![0u8; size.0 as usize * size.1 as usize * 3];
    for (slot, tile) in tiles {
        let (_, column, row) = layout.place(*slot);
        let picture = image::load_from_memory_with_format(tile, image::ImageFormat::Jpeg)
            .map_err(|e| MediaError::Malformed(format!("a storyboard tile: {e}")))?
            .to_rgb8();
        blit(
            &mut canvas,
            size.0,
            &picture,
            (column * cell.0, row * cell.1),
            cell,
        );
    }
    let mut jpeg = Vec::with_capacity(canvas.len() / 10);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 75)
        .encode(&canvas, size.0, size.1, image::ExtendedColorType::Rgb8)
        .map_err(|e| MediaError::Pipeline(format!("encoding a storyboard sheet: {e}")))?;
    Ok(Bytes::from(jpeg))
}

/// Copies `picture` into the RGB `canvas` (`width` pixels a row) at `at`,
/// cut to `cell`.
fn blit(
    canvas: &mut [u8],
    width: u32,
    picture: &image::RgbImage,
    at: (u32, u32),
    cell: (u32, u32),
) {
    let w = picture.width().min(cell.0) as usize;
    let h = picture.height().min(cell.1);
    for y in 0..h {
        let from = (y * picture.width()) as usize * 3;
        let to = (((at.1 + y) * width) + at.0) as usize * 3;
        canvas[to..to + w * 3].copy_from_slice(&picture.as_raw()[from..from + w * 3]);
    }
}

/// The start of a storyboard's WebVTT: its cue times count from
/// `origin_ms`, which a `NOTE` names.
pub fn vtt_header(origin_ms: i64) -> String {
    let mut out = String::from("WEBVTT\n\n");
    let _ = writeln!(
        out,
        "NOTE 00:00:00.000 is {} (the session's start)\n",
        crate::proto::timestamp_to_rfc3339(&crate::proto::timestamp_from_millis(origin_ms))
    );
    out
}

/// Appends the cue of `slot`, shown over `cue` (ms from the origin), at
/// its place in the sheet at `sheet_url`, whose cells are `cell`.
pub fn write_cue(
    out: &mut String,
    layout: &Layout,
    slot: i64,
    cue: (i64, i64),
    sheet_url: &str,
    cell: (u32, u32),
) {
    let (_, column, row) = layout.place(slot);
    let _ = writeln!(
        out,
        "{} --> {}\n{sheet_url}#xywh={},{},{},{}\n",
        vtt_time(cue.0),
        vtt_time(cue.1),
        column * cell.0,
        row * cell.1,
        cell.0,
        cell.1
    );
}

/// `hh:mm:ss.mmm` of `ms` (never negative).
fn vtt_time(ms: i64) -> String {
    let ms = ms.max(0);
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests;
