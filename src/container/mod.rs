//! Container formats written from access units, as pure bytes (no
//! GStreamer): [`mp4`] files with the index in front (clips), fragmented
//! MP4 ([`fmp4`]) written fragment by fragment as the media arrives
//! (recordings, replay segments), and MPEG-TS ([`ts`], replay segments).
//! [`boxes`] writes and walks ISO-BMFF boxes; [`sample_entry`] turns a
//! track's format and its access units into MP4 sample entries (`avc1`,
//! `hvc1`, `mp4a`) and samples.

pub(crate) mod boxes;
pub(crate) mod fmp4;
pub(crate) mod fmp4_read;
pub(crate) mod mp4;
pub(crate) mod sample_entry;
pub(crate) mod ts;

#[cfg(test)]
pub(crate) mod round_trip;
