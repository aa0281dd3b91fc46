//! Container formats written from access units, as pure bytes (no
//! GStreamer): [`mp4`] files with the index in front (clips), and
//! fragmented MP4 ([`fmp4`]) written fragment by fragment as the media
//! arrives (recordings). [`boxes`] writes ISO-BMFF boxes;
//! [`sample_entry`] turns H.264 and AAC units into samples and sample
//! entries.

pub(crate) mod boxes;
pub mod fmp4;
pub mod mp4;
pub(crate) mod sample_entry;
