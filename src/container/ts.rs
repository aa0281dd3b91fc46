//! A GOP as MPEG-TS written directly from its access units: PAT and PMT,
//! then one PES per access unit (H.264/H.265 Annex-B as parsed, AAC in
//! ADTS, as received or given a header), PCR on the video PID at every
//! frame. Timestamps are
//! the stream's, in 90 kHz, so consecutive segments concatenate. This is a
//! copy into 188-byte packets, no GStreamer pipeline per GOP.

use std::time::Duration;

use super::sample_entry::AudioConfig;
use crate::media::{aac::adts_header_len, AccessUnit, Codec};

const PACKET: usize = 188;
const PMT_PID: u16 = 0x1000;
const VIDEO_PID: u16 = 0x100;
const AUDIO_PID: u16 = 0x101;
/// The PCR runs this far behind decode times (90 kHz): 100 ms, so every
/// frame reaches a decoder before its decode time.
const PCR_LEAD: u64 = 9000;

/// 90 kHz ticks of a stream time, rounded, wrapped to 33 bits.
fn pes_time(d: Duration) -> u64 {
    crate::media::ticks(d, 90_000) & ((1 << 33) - 1)
}

/// The MPEG-TS bytes of `units` (a GOP, in arrival order).
pub fn write(units: &[AccessUnit]) -> Vec<u8> {
    let bytes: usize = units.iter().map(|u| u.data.len() + 32).sum();
    let mut mux = Muxer {
        out: Vec::with_capacity((bytes / 184 + 4) * PACKET),
        counters: [0; 3],
    };
    let video_type = match units.iter().find(|u| u.codec.is_video()).map(|u| u.codec) {
        Some(Codec::H265) => 0x24,
        _ => 0x1b,
    };
    let first_audio = units.iter().find(|u| u.codec == Codec::Aac);
    mux.tables(video_type, first_audio.is_some());
    // Raw AAC (from a source other than MPEG-TS) gets ADTS headers.
    let raw_audio = first_audio
        .filter(|u| adts_header_len(&u.data).is_none())
        .and_then(|u| AudioConfig::from_unit(u).ok());
    let mut framed = Vec::new();
    for unit in units {
        let pts = pes_time(unit.pts.or(unit.dts).unwrap_or_default());
        let dts = pes_time(unit.decode_time().unwrap_or_default());
        if unit.codec.is_video() {
            let pcr = dts.saturating_sub(PCR_LEAD) * 300;
            mux.pes(
                VIDEO_PID,
                0xe0,
                pts,
                dts,
                &unit.data,
                Some(pcr),
                unit.keyframe,
            );
        } else {
            let data = match (&raw_audio, adts_header_len(&unit.data)) {
                (Some(config), None) => {
                    framed.clear();
                    framed.extend_from_slice(&config.adts_header(unit.data.len()));
                    framed.extend_from_slice(&unit.data);
                    &framed[..]
                }
                _ => &unit.data[..],
            };
            mux.pes(AUDIO_PID, 0xc0, pts, dts, data, None, false);
        }
    }
    mux.out
}

struct Muxer {
    out: Vec<u8>,
    /// Continuity counters: tables, video, audio.
    counters: [u8; 3],
}

fn counter_index(pid: u16) -> usize {
    match pid {
        VIDEO_PID => 1,
        AUDIO_PID => 2,
        _ => 0,
    }
}

impl Muxer {
    /// One packet of `pid`, taking as much of `payload` as fits after the
    /// adaptation field `adaptation` (flags byte and fields, or empty);
    /// stuffing fills the rest. Returns the payload bytes taken.
    fn packet(&mut self, pid: u16, unit_start: bool, adaptation: &[u8], payload: &[u8]) -> usize {
        let mut field = adaptation.to_vec();
        let mut field_len = if field.is_empty() { 0 } else { 1 + field.len() };
        let room = PACKET - 4 - field_len;
        let take = payload.len().min(room);
        let stuffing = room - take;
        if stuffing > 0 {
            if field_len == 0 {
                // A one-byte field is just its length (0).
                if stuffing > 1 {
                    field.push(0x00);
                    field.resize(stuffing - 1, 0xff);
                }
                field_len = stuffing;
            } else {
                field.resize(field.len() + stuffing, 0xff);
                field_len += stuffing;
            }
        }
        let counter = &mut self.counters[counter_index(pid)];
        let control = (if field_len > 0 { 2 } else { 0 }) | u8::from(take > 0);
        self.out.push(0x47);
        self.out
            .push((u8::from(unit_start) << 6) | ((pid >> 8) as u8 & 0x1f));
        self.out.push(pid as u8);
        self.out.push((control << 4) | *counter);
        if take > 0 {
            *counter = (*counter + 1) & 0xf;
        }
        if field_len > 0 {
            self.out.push((field_len - 1) as u8);
            self.out.extend_from_slice(&field);
        }
        self.out.extend_from_slice(&payload[..take]);
        take
    }

    /// A PSI section in one packet (pointer field, section, CRC).
    fn section(&mut self, pid: u16, table_id: u8, id: u16, body: &[u8]) {
        let length = 5 + body.len() + 4;
        let mut section = vec![
            table_id,
            0xb0 | (length >> 8) as u8,
            length as u8,
            (id >> 8) as u8,
            id as u8,
            0xc1, // version 0, current
            0,
            0,
        ];
        section.extend_from_slice(body);
        let crc = crc32_mpeg2(&section);
        section.extend_from_slice(&crc.to_be_bytes());
        let mut payload = vec![0u8]; // pointer field
        payload.extend_from_slice(&section);
        payload.resize(PACKET - 4, 0xff);
        self.packet(pid, true, &[], &payload);
    }

    fn tables(&mut self, video_type: u8, has_audio: bool) {
        let pmt = [0x00, 0x01, 0xe0 | (PMT_PID >> 8) as u8, PMT_PID as u8];
        self.section(0, 0x00, 1, &pmt);
        let mut body = vec![
            0xe0 | (VIDEO_PID >> 8) as u8,
            VIDEO_PID as u8, // PCR PID
            0xf0,
            0x00,
        ];
        let mut stream = |kind: u8, pid: u16| {
            body.extend_from_slice(&[kind, 0xe0 | (pid >> 8) as u8, pid as u8, 0xf0, 0x00]);
        };
        stream(video_type, VIDEO_PID);
        if has_audio {
            stream(0x0f, AUDIO_PID);
        }
        self.section(PMT_PID, 0x02, 1, &body);
    }

    #[allow(clippy::too_many_arguments)]
    fn pes(
        &mut self,
        pid: u16,
        stream_id: u8,
        pts: u64,
        dts: u64,
        data: &[u8],
        pcr: Option<u64>,
        random_access: bool,
    ) {
        let with_dts = dts != pts;
        let header_data = if with_dts { 10 } else { 5 };
        let after_length = 3 + header_data + data.len();
        // Video PES of any size say 0 (unbounded), as the standard allows.
        let length = if stream_id >= 0xe0 || after_length > 0xffff {
            0
        } else {
            after_length as u16
        };
        let mut header = vec![0, 0, 1, stream_id, (length >> 8) as u8, length as u8];
        header.extend_from_slice(&[0x84, if with_dts { 0xc0 } else { 0x80 }, header_data as u8]);
        header.extend_from_slice(&timestamp(if with_dts { 3 } else { 2 }, pts));
        if with_dts {
            header.extend_from_slice(&timestamp(1, dts));
        }
        let mut adaptation = vec![];
        if pcr.is_some() || random_access {
            adaptation.push((u8::from(random_access) << 6) | (u8::from(pcr.is_some()) << 4));
            if let Some(pcr) = pcr {
                adaptation.extend_from_slice(&pcr_field(pcr));
            }
        }
        // The first packet carries the header and as much data as fits.
        let mut first = header;
        let room = PACKET
            - 4
            - if adaptation.is_empty() {
                0
            } else {
                1 + adaptation.len()
            };
        let head = data.len().min(room.saturating_sub(first.len()));
        first.extend_from_slice(&data[..head]);
        self.packet(pid, true, &adaptation, &first);
        let mut rest = &data[head..];
        while !rest.is_empty() {
            let taken = self.packet(pid, false, &[], rest);
            rest = &rest[taken..];
        }
    }
}

/// A PES timestamp: 4-bit prefix, 33 bits with marker bits.
fn timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8 & 0x7f) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8 & 0x7f) << 1) | 1,
    ]
}

/// A PCR (27 MHz) as its 6-byte field.
fn pcr_field(pcr: u64) -> [u8; 6] {
    let base = (pcr / 300) & ((1 << 33) - 1);
    let ext = pcr % 300;
    [
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) << 7) as u8 | 0x7e | (ext >> 8) as u8,
        ext as u8,
    ]
}

/// CRC-32/MPEG-2 of PSI sections.
fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_pat() {
        // The PAT ffmpeg writes for program 1 / PMT PID 0x1000.
        let pat = [
            0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00,
        ];
        assert_eq!(crc32_mpeg2(&pat), 0x2ab1_04b2);
    }

    #[test]
    fn packets_are_whole_and_counted() {
        let mut mux = Muxer {
            out: vec![],
            counters: [0; 3],
        };
        mux.pes(VIDEO_PID, 0xe0, 9000, 6000, &[7u8; 1000], Some(0), true);
        assert_eq!(mux.out.len() % PACKET, 0);
        let packets: Vec<&[u8]> = mux.out.chunks(PACKET).collect();
        assert!(packets.iter().all(|p| p[0] == 0x47));
        let counters: Vec<u8> = packets.iter().map(|p| p[3] & 0xf).collect();
        assert_eq!(counters, (0..packets.len() as u8).collect::<Vec<_>>());
        assert_eq!(packets[0][1] & 0x40, 0x40, "first packet starts the PES");
        assert_eq!(packets[0][5] & 0x50, 0x50, "random access + PCR");
    }
}
