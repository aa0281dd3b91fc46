//! Media that its protocol has already taken apart (RTMP's FLV tags), as
//! the pushed pipeline takes it: each track's configuration when it
//! starts or changes, then its frames, with 90 kHz times (33 bits, as
//! MPEG-TS counts them, so one session clock serves every protocol).

use std::sync::Arc;

use bytes::Bytes;

use crate::media::{Codec, TrackFormat};

/// One item of demultiplexed media.
#[derive(Debug, Clone)]
pub enum Elementary {
    /// A video track's decoder configuration: its parameter sets (NAL
    /// units without start codes; the VPS for H.265 only).
    VideoConfig {
        codec: Codec,
        vps: Option<Bytes>,
        sps: Bytes,
        pps: Bytes,
    },
    /// One picture, as Annex-B NAL units.
    Video {
        codec: Codec,
        pts: u64,
        dts: u64,
        data: Bytes,
    },
    /// An audio track's format (AAC's AudioSpecificConfig).
    AudioConfig(Arc<TrackFormat>),
    /// One raw AAC frame (no ADTS header).
    Audio { pts: u64, data: Bytes },
    /// A track of a codec that is not decoded, by name (said once).
    Unsupported(String),
}

impl Elementary {
    /// The decode time of a frame (90 kHz), for pacing.
    pub fn decode_ticks(&self) -> Option<u64> {
        match self {
            Elementary::Video { dts, .. } => Some(*dts),
            Elementary::Audio { pts, .. } => Some(*pts),
            _ => None,
        }
    }

    /// Media bytes carried.
    pub fn media_bytes(&self) -> usize {
        match self {
            Elementary::Video { data, .. } | Elementary::Audio { data, .. } => data.len(),
            Elementary::VideoConfig { vps, sps, pps, .. } => {
                vps.as_ref().map_or(0, Bytes::len) + sps.len() + pps.len()
            }
            _ => 0,
        }
    }
}
