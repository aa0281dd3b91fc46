//! MPEG-TS demultiplexing of pushed streams, in the session's own task:
//! 188-byte packets in, the PES payloads of the programme's video and
//! audio track out, each as one shared `Bytes` (the only copy of the media
//! on the way in: TS cuts every PES into 184-byte pieces).
//!
//! ```text
//! packet: 0x47 | PID | payload_unit_start | adaptation field? | payload
//!   PID 0      PAT  → the PMT's PID (first programme)
//!   PMT PID    PMT  → stream type per PID: 0x1b H.264, 0x24 H.265,
//!                     0x0f AAC (ADTS); others are reported, not decoded
//!   track PID  PES  → header (PTS, DTS; 90 kHz, 33 bits) + payload, which
//!                     ends at the next payload_unit_start (or its length)
//! ```
//!
//! A new PMT (tracks added, removed or of another codec) replaces the
//! tracks; a continuity gap on a track drops the PES it broke, so no
//! damaged frame goes on. Chunks need not be aligned to packets.

use bytes::{Bytes, BytesMut};

use crate::media::Codec;

pub const PACKET: usize = 188;
const PAT_PID: u16 = 0;
/// Video PES are gathered into chunks of this size: consecutive frames
/// share one allocation (each frame a `Bytes` slice of it), and they leave
/// memory together (a replay buffer evicts whole GOPs, oldest first).
const VIDEO_CHUNK: usize = 1024 * 1024;
/// A new chunk is started when less than this is left in the current one;
/// the rest of the old one is the only waste (at most 6 %: with 64 KiB
/// chunks it was a fifth of the replay buffer's memory).
const VIDEO_CHUNK_TAIL: usize = 64 * 1024;
/// Bytes a PES of unknown length may grow to before it is given up (a
/// 4K keyframe is well under this).
const MAX_PES: usize = 16 << 20;

/// One PES payload of a track.
#[derive(Debug, Clone)]
pub struct Pes {
    pub codec: Codec,
    /// 90 kHz, 33 bits as sent.
    pub pts: Option<u64>,
    pub dts: Option<u64>,
    pub data: Bytes,
}

/// What the demuxer found.
#[derive(Debug, Clone)]
pub enum DemuxEvent {
    /// The programme's tracks changed (first PMT, or a new one).
    Programme {
        video: Option<Codec>,
        audio: Option<Codec>,
        /// Stream types of audio or video tracks that are not decoded.
        unsupported: Vec<u8>,
    },
    Pes(Pes),
}

/// What a PMT stream type is to liveproc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamType {
    /// A codec liveproc takes.
    Taken(Codec),
    /// Audio or video of another codec: reported by name, not decoded.
    Other(&'static str),
    /// Data (subtitles, metadata, SCTE-35): passed over in silence.
    Data,
}

/// The one table of PMT stream types.
pub fn stream_type(kind: u8) -> StreamType {
    match kind {
        0x1b => StreamType::Taken(Codec::H264),
        0x24 => StreamType::Taken(Codec::H265),
        0x0f => StreamType::Taken(Codec::Aac),
        0x01 => StreamType::Other("MPEG-1 video"),
        0x02 => StreamType::Other("MPEG-2 video"),
        0x10 => StreamType::Other("MPEG-4 part 2 video"),
        0xea => StreamType::Other("VC-1 video"),
        0x42 => StreamType::Other("AVS video"),
        0x03 | 0x04 => StreamType::Other("MPEG audio"),
        0x11 => StreamType::Other("AAC in LATM"),
        0x81 => StreamType::Other("AC-3 audio"),
        0x87 => StreamType::Other("E-AC-3 audio"),
        0x82 => StreamType::Other("DTS audio"),
        _ => StreamType::Data,
    }
}

/// A PES being gathered.
struct Assembler {
    pid: u16,
    codec: Codec,
    buf: BytesMut,
    /// Payload bytes the PES says it has (0: until the next start).
    expected: usize,
    pts: Option<u64>,
    dts: Option<u64>,
    /// A start was seen and nothing was lost since.
    intact: bool,
    counter: Option<u8>,
}

impl Assembler {
    fn new(pid: u16, codec: Codec) -> Self {
        Self {
            pid,
            codec,
            buf: BytesMut::new(),
            expected: 0,
            pts: None,
            dts: None,
            intact: false,
            counter: None,
        }
    }

    /// The PES gathered so far, if whole.
    fn take(&mut self) -> Option<Pes> {
        let whole = self.intact && !self.buf.is_empty();
        self.intact = false;
        let data = self.buf.split().freeze();
        whole.then(|| Pes {
            codec: self.codec,
            pts: self.pts,
            dts: self.dts,
            data,
        })
    }

    /// Starts a PES from a packet payload that begins with its header.
    fn start(&mut self, payload: &[u8]) {
        self.buf.clear();
        self.intact = false;
        let Some(header) = PesHeader::parse(payload) else {
            return;
        };
        self.pts = header.pts;
        self.dts = header.dts.or(header.pts);
        self.expected = header.payload_len;
        self.intact = true;
        if self.codec.is_video() && self.buf.capacity() < VIDEO_CHUNK_TAIL {
            self.buf.reserve(VIDEO_CHUNK);
        }
        self.buf.extend_from_slice(&payload[header.header_len..]);
    }
}

struct PesHeader {
    pts: Option<u64>,
    dts: Option<u64>,
    header_len: usize,
    payload_len: usize,
}

impl PesHeader {
    fn parse(p: &[u8]) -> Option<PesHeader> {
        if p.len() < 9 || p[..3] != [0, 0, 1] {
            return None;
        }
        let packet_len = usize::from(u16::from_be_bytes([p[4], p[5]]));
        let flags = p[7] >> 6;
        let header_len = 9 + usize::from(p[8]);
        if p.len() < header_len {
            return None;
        }
        let time = |at: usize| -> Option<u64> {
            let b = p.get(at..at + 5)?;
            Some(
                (u64::from(b[0] >> 1) & 0x07) << 30
                    | u64::from(b[1]) << 22
                    | u64::from(b[2] >> 1) << 15
                    | u64::from(b[3]) << 7
                    | u64::from(b[4] >> 1),
            )
        };
        let (pts, dts) = match flags {
            2 => (time(9), None),
            3 => (time(9), time(14)),
            _ => (None, None),
        };
        let payload_len = packet_len.saturating_sub(header_len - 6);
        Some(PesHeader {
            pts,
            dts,
            header_len,
            payload_len: if packet_len == 0 { 0 } else { payload_len },
        })
    }
}

/// The demultiplexer of one session.
#[derive(Default)]
pub struct TsDemux {
    /// Bytes of a packet cut by the end of the last chunk.
    partial: Vec<u8>,
    pmt_pid: Option<u16>,
    /// The PMT section being gathered (it may span packets).
    section: Vec<u8>,
    /// The last PMT's track PIDs and codecs, to tell a new one.
    programme: Option<Vec<(u16, u8)>>,
    video: Option<Assembler>,
    audio: Option<Assembler>,
}

impl TsDemux {
    /// Demultiplexes `data` (any cut of the stream), appending what it
    /// finds to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut Vec<DemuxEvent>) {
        if !self.partial.is_empty() {
            let need = PACKET - self.partial.len();
            let take = need.min(data.len());
            self.partial.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.partial.len() < PACKET {
                return;
            }
            let packet = std::mem::take(&mut self.partial);
            self.packet(&packet, out);
        }
        let mut chunks = data.chunks_exact(PACKET);
        for packet in &mut chunks {
            self.packet(packet, out);
        }
        self.partial.extend_from_slice(chunks.remainder());
    }

    /// The end of the stream: the PES still being gathered are complete.
    pub fn flush(&mut self, out: &mut Vec<DemuxEvent>) {
        for track in [&mut self.video, &mut self.audio].into_iter().flatten() {
            if let Some(pes) = track.take() {
                out.push(DemuxEvent::Pes(pes));
            }
        }
    }

    fn packet(&mut self, p: &[u8], out: &mut Vec<DemuxEvent>) {
        // Not in sync, or marked as damaged by the transport: skipped.
        if p[0] != 0x47 || p[1] & 0x80 != 0 {
            return;
        }
        let start = p[1] & 0x40 != 0;
        let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
        let control = (p[3] >> 4) & 3;
        let counter = p[3] & 0x0f;
        let payload_at = match control {
            1 => 4,
            3 => 5 + usize::from(p[4]),
            _ => return, // no payload
        };
        if payload_at >= PACKET {
            return;
        }
        let payload = &p[payload_at..];
        if pid == PAT_PID {
            if start {
                self.pat(payload);
            }
            return;
        }
        if Some(pid) == self.pmt_pid {
            self.pmt_packet(payload, start, out);
            return;
        }
        let Some(track) = [&mut self.video, &mut self.audio]
            .into_iter()
            .flatten()
            .find(|t| t.pid == pid)
        else {
            return;
        };
        // A continuity gap inside a PES: it lost bytes (a repeated counter
        // is a duplicate packet). A gap before a PES starts loses nothing
        // of it (a publisher that restarted its muxer).
        let previous = track.counter.replace(counter);
        let gap = previous.is_some_and(|p| counter != (p + 1) & 0x0f && counter != p);
        if start {
            if let Some(pes) = track.take() {
                out.push(DemuxEvent::Pes(pes));
            }
            track.start(payload);
        } else if gap {
            track.intact = false;
        } else if track.intact {
            track.buf.extend_from_slice(payload);
            if track.buf.len() > MAX_PES {
                track.intact = false;
                track.buf.clear();
            }
        }
        if track.intact && track.expected > 0 && track.buf.len() >= track.expected {
            track.buf.truncate(track.expected);
            if let Some(pes) = track.take() {
                out.push(DemuxEvent::Pes(pes));
            }
        }
    }

    fn pat(&mut self, payload: &[u8]) {
        let Some(section) = section_body(payload, 0x00) else {
            return;
        };
        // program_number (16), reserved (3) + PID (13), per programme.
        self.pmt_pid = section
            .chunks_exact(4)
            .find(|e| u16::from_be_bytes([e[0], e[1]]) != 0)
            .map(|e| u16::from(e[2] & 0x1f) << 8 | u16::from(e[3]));
    }

    fn pmt_packet(&mut self, payload: &[u8], start: bool, out: &mut Vec<DemuxEvent>) {
        if start {
            self.section.clear();
            self.section.extend_from_slice(payload);
        } else if !self.section.is_empty() {
            self.section.extend_from_slice(payload);
        }
        let section = std::mem::take(&mut self.section);
        match section_body(&section, 0x02) {
            Some(body) => self.pmt(body, out),
            // Not whole yet: keep gathering.
            None if section_length(&section).is_some_and(|len| section.len() < len) => {
                self.section = section;
            }
            None => {}
        }
    }

    fn pmt(&mut self, body: &[u8], out: &mut Vec<DemuxEvent>) {
        if body.len() < 4 {
            return;
        }
        let info_len = usize::from(u16::from_be_bytes([body[2] & 0x0f, body[3]]));
        let mut entries = body.get(4 + info_len..).unwrap_or_default();
        let mut tracks = Vec::new();
        while entries.len() >= 5 {
            let kind = entries[0];
            let pid = u16::from(entries[1] & 0x1f) << 8 | u16::from(entries[2]);
            let es_info = usize::from(u16::from_be_bytes([entries[3] & 0x0f, entries[4]]));
            tracks.push((pid, kind));
            entries = entries.get(5 + es_info..).unwrap_or_default();
        }
        if self.programme.as_ref() == Some(&tracks) {
            return;
        }
        let (mut video, mut audio, mut unsupported) = (None, None, Vec::new());
        for &(pid, kind) in &tracks {
            match stream_type(kind) {
                StreamType::Taken(codec) if codec.is_video() && video.is_none() => {
                    video = Some((pid, codec))
                }
                StreamType::Taken(codec) if !codec.is_video() && audio.is_none() => {
                    audio = Some((pid, codec))
                }
                StreamType::Taken(_) => {} // a second track of a kind: ignored
                StreamType::Other(_) => unsupported.push(kind),
                StreamType::Data => {}
            }
        }
        // A track that stays (same PID and codec) keeps the PES it is
        // gathering; the others are replaced.
        let keep = |old: Option<Assembler>,
                    new: Option<(u16, Codec)>,
                    out: &mut Vec<DemuxEvent>| match (old, new) {
            (Some(old), Some((pid, codec))) if old.pid == pid && old.codec == codec => Some(old),
            (old, new) => {
                if let Some(pes) = old.and_then(|mut o| o.take()) {
                    out.push(DemuxEvent::Pes(pes));
                }
                new.map(|(pid, codec)| Assembler::new(pid, codec))
            }
        };
        self.video = keep(self.video.take(), video, out);
        self.audio = keep(self.audio.take(), audio, out);
        self.programme = Some(tracks);
        out.push(DemuxEvent::Programme {
            video: video.map(|v| v.1),
            audio: audio.map(|a| a.1),
            unsupported,
        });
    }
}

/// The length of a PSI section (from its pointer field on), if known.
fn section_length(payload: &[u8]) -> Option<usize> {
    let pointer = usize::from(*payload.first()?);
    let at = 1 + pointer;
    let len = usize::from(u16::from_be_bytes([
        *payload.get(at + 1)? & 0x0f,
        *payload.get(at + 2)?,
    ]));
    Some(at + 3 + len)
}

/// The body of a whole PSI section of `table_id` (after the 5 bytes that
/// follow the length, up to the CRC), if `payload` holds all of it.
fn section_body(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let at = 1 + usize::from(*payload.first()?);
    if *payload.get(at)? != table_id {
        return None;
    }
    let end = section_length(payload)?;
    // table_id, length (2), then 5 bytes (id, version, section numbers),
    // the body, and a 4-byte CRC.
    payload.get(at + 8..end.checked_sub(4)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packets of `payload` on `pid`, the first with the start flag.
    fn packets(pid: u16, payload: &[u8], counter: &mut u8) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, piece) in payload.chunks(184).enumerate() {
            let mut p = vec![
                0x47,
                (pid >> 8) as u8 & 0x1f,
                pid as u8,
                0x10 | (*counter & 0x0f),
            ];
            if i == 0 {
                p[1] |= 0x40;
            }
            *counter = counter.wrapping_add(1);
            if piece.len() < 184 {
                // Stuffing in an adaptation field.
                let stuffing = 184 - piece.len();
                p[3] |= 0x20;
                p.push((stuffing - 1) as u8);
                if stuffing > 1 {
                    p.push(0);
                    p.extend(std::iter::repeat_n(0xff, stuffing - 2));
                }
            }
            p.extend_from_slice(piece);
            out.extend(p);
        }
        out
    }

    fn section(table_id: u8, body: &[u8]) -> Vec<u8> {
        let len = body.len() + 5 + 4;
        let mut s = vec![
            0,
            table_id,
            0xb0 | (len >> 8) as u8,
            len as u8,
            0,
            1,
            0xc1,
            0,
            0,
        ];
        s.extend_from_slice(body);
        s.extend_from_slice(&[0; 4]); // CRC (not checked)
        s
    }

    fn pes(stream_id: u8, pts: u64, dts: Option<u64>, data: &[u8], sized: bool) -> Vec<u8> {
        let stamp = |prefix: u8, t: u64| {
            [
                prefix << 4 | ((t >> 29) as u8 & 0x0e) | 1,
                (t >> 22) as u8,
                ((t >> 14) as u8 & 0xfe) | 1,
                (t >> 7) as u8,
                ((t << 1) as u8) | 1,
            ]
        };
        let mut header = vec![0x80, if dts.is_some() { 0xc0 } else { 0x80 }];
        let mut stamps = stamp(if dts.is_some() { 3 } else { 2 }, pts).to_vec();
        if let Some(dts) = dts {
            stamps.extend(stamp(1, dts));
        }
        header.push(stamps.len() as u8);
        header.extend(stamps);
        let len = if sized { header.len() + data.len() } else { 0 };
        let mut p = vec![0, 0, 1, stream_id, (len >> 8) as u8, len as u8];
        p.extend(header);
        p.extend_from_slice(data);
        p
    }

    fn stream() -> Vec<u8> {
        let (mut c0, mut c1, mut cv, mut ca) = (0, 0, 0, 0);
        let mut ts = packets(0, &section(0, &[0, 1, 0xf0, 0x00]), &mut c0);
        // PMT: PCR PID 0x100, H.264 on 0x100, AAC on 0x101, MPEG-2 audio on 0x102.
        let pmt = [
            0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0x0f, 0xe1, 0x01, 0xf0, 0x00,
            0x03, 0xe1, 0x02, 0xf0, 0x00,
        ];
        ts.extend(packets(0x1000, &section(2, &pmt), &mut c1));
        let frame: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        ts.extend(packets(
            0x100,
            &pes(0xe0, 6000, Some(3000), &frame, false),
            &mut cv,
        ));
        ts.extend(packets(
            0x101,
            &pes(0xc0, 3000, None, &[1, 2, 3], true),
            &mut ca,
        ));
        ts.extend(packets(
            0x100,
            &pes(0xe0, 9000, Some(6000), &[9; 10], false),
            &mut cv,
        ));
        ts
    }

    #[test]
    fn finds_the_tracks_and_their_pes_in_any_cut() {
        for cut in [1, 7, 188, 1316, 100_000] {
            let mut demux = TsDemux::default();
            let mut out = Vec::new();
            for chunk in stream().chunks(cut) {
                demux.push(chunk, &mut out);
            }
            demux.flush(&mut out);
            let DemuxEvent::Programme {
                video,
                audio,
                unsupported,
            } = &out[0]
            else {
                panic!("{out:?}");
            };
            assert_eq!((*video, *audio), (Some(Codec::H264), Some(Codec::Aac)));
            assert_eq!(unsupported, &vec![0x03]);
            let pes: Vec<&Pes> = out
                .iter()
                .filter_map(|e| match e {
                    DemuxEvent::Pes(p) => Some(p),
                    _ => None,
                })
                .collect();
            assert_eq!(pes.len(), 3, "cut {cut}");
            // The sized audio PES is complete at once; video at the next start.
            assert_eq!(pes[0].codec, Codec::Aac);
            assert_eq!(&pes[0].data[..], &[1, 2, 3]);
            assert_eq!((pes[0].pts, pes[0].dts), (Some(3000), Some(3000)));
            assert_eq!(pes[1].codec, Codec::H264);
            assert_eq!(pes[1].data.len(), 1000);
            assert_eq!((pes[1].pts, pes[1].dts), (Some(6000), Some(3000)));
            assert_eq!(&pes[2].data[..], &[9; 10]);
        }
    }

    #[test]
    fn a_continuity_gap_drops_the_broken_pes() {
        let ts = stream();
        let packets: Vec<&[u8]> = ts.chunks(188).collect();
        // Drop the second packet of the first video PES (packets: PAT, PMT,
        // then video).
        let mut damaged = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            if i != 3 {
                damaged.extend_from_slice(p);
            }
        }
        let mut demux = TsDemux::default();
        let mut out = Vec::new();
        demux.push(&damaged, &mut out);
        demux.flush(&mut out);
        let sizes: Vec<usize> = out
            .iter()
            .filter_map(|e| match e {
                DemuxEvent::Pes(p) if p.codec.is_video() => Some(p.data.len()),
                _ => None,
            })
            .collect();
        assert_eq!(sizes, vec![10]);
    }

    #[test]
    fn garbage_finds_nothing() {
        let mut demux = TsDemux::default();
        let mut out = Vec::new();
        demux.push(&[0x47; 188 * 10], &mut out);
        demux.push(&[0u8; 1000], &mut out);
        demux.flush(&mut out);
        assert!(out.is_empty(), "{out:?}");
    }
}
