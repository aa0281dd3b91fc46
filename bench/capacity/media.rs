//! The load's media: one H.264/AAC MPEG-TS file made once by ffmpeg, read
//! into memory and indexed for real-time pacing (by PCR) and for where each
//! keyframe starts and ends, so the load can say when a keyframe was sent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;

const PACKET: usize = 188;
/// TS packets per SRT message / paced chunk (7 × 188 = 1316 bytes).
const PACKETS_PER_CHUNK: usize = 7;

/// What to encode.
#[derive(Clone, Debug)]
pub struct MediaSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: u32,
    pub video_kbps: u32,
    pub gop_seconds: u32,
}

impl MediaSpec {
    /// The full runs' input: 1080p30 H.264 at 4 Mbit/s, GOP 2 s, 100 s.
    pub fn full() -> MediaSpec {
        MediaSpec {
            width: 1920,
            height: 1080,
            fps: 30,
            seconds: 100,
            video_kbps: 4000,
            gop_seconds: 2,
        }
    }

    /// The smoke runs' input: 360p30 at 1 Mbit/s, GOP 1 s, 40 s.
    pub fn smoke() -> MediaSpec {
        MediaSpec {
            width: 640,
            height: 360,
            fps: 30,
            seconds: 40,
            video_kbps: 1000,
            gop_seconds: 1,
        }
    }

    fn file_name(&self) -> String {
        format!(
            "{}p{}_{}k_gop{}_{}s.ts",
            self.height, self.fps, self.video_kbps, self.gop_seconds, self.seconds
        )
    }
}

/// A span of the file sent at once, `at` after the start of the stream.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub start: usize,
    pub end: usize,
    pub at: Duration,
}

/// A video keyframe: the chunk holding its last byte.
#[derive(Clone, Copy, Debug)]
pub struct Keyframe {
    pub last_chunk: usize,
    /// PES presentation time, 90 kHz.
    pub pts: u64,
}

/// The indexed file.
pub struct Media {
    pub spec: MediaSpec,
    pub path: PathBuf,
    pub bytes: Bytes,
    pub chunks: Vec<Chunk>,
    pub keyframes: Vec<Keyframe>,
}

impl Media {
    /// Makes the file in `dir` unless it is there already, then indexes it.
    pub fn prepare(spec: MediaSpec, dir: &Path) -> anyhow::Result<Media> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(spec.file_name());
        if !path.exists() {
            encode(&spec, &path)?;
        }
        let bytes = Bytes::from(std::fs::read(&path)?);
        let (chunks, keyframes) = index(&bytes)?;
        anyhow::ensure!(
            keyframes.len() >= 2,
            "{}: fewer than 2 keyframes",
            path.display()
        );
        Ok(Media {
            spec,
            path,
            bytes,
            chunks,
            keyframes,
        })
    }

    pub fn chunk_bytes(&self, chunk: usize) -> Bytes {
        let c = self.chunks[chunk];
        self.bytes.slice(c.start..c.end)
    }

    /// Chunks `from..to` as one contiguous slice of the file (no copy).
    pub fn span(&self, from: usize, to: usize) -> Bytes {
        self.bytes
            .slice(self.chunks[from].start..self.chunks[to - 1].end)
    }

    pub fn duration(&self) -> Duration {
        self.chunks.last().map(|c| c.at).unwrap_or_default()
    }

    /// Average bytes per second of the file in real time.
    pub fn byte_rate(&self) -> f64 {
        self.bytes.len() as f64 / self.duration().as_secs_f64().max(0.001)
    }

    /// The keyframe whose PTS is nearest to `pts` (90 kHz).
    pub fn keyframe_near(&self, pts: f64) -> Option<usize> {
        let gop = self.spec.gop_seconds as f64 * 90_000.0;
        let (index, key) = self.keyframes.iter().enumerate().min_by(|a, b| {
            let da = (a.1.pts as f64 - pts).abs();
            let db = (b.1.pts as f64 - pts).abs();
            da.total_cmp(&db)
        })?;
        ((key.pts as f64 - pts).abs() < gop / 4.0).then_some(index)
    }
}

fn encode(spec: &MediaSpec, path: &Path) -> anyhow::Result<()> {
    let partial = path.with_extension("partial.ts");
    let gop = (spec.fps * spec.gop_seconds).to_string();
    let rate = format!("{}k", spec.video_kbps);
    let buffer = format!("{}k", spec.video_kbps * 2);
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i"])
        .arg(format!(
            "testsrc2=size={}x{}:rate={}",
            spec.width, spec.height, spec.fps
        ))
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &spec.seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        ])
        .args(["-b:v", &rate, "-maxrate", &rate, "-bufsize", &buffer])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "128k", "-f", "mpegts"])
        .arg(&partial)
        .status()?;
    anyhow::ensure!(status.success(), "ffmpeg could not make {}", path.display());
    std::fs::rename(&partial, path)?;
    Ok(())
}

/// One parsed TS packet header.
struct Packet<'a> {
    pid: u16,
    unit_start: bool,
    random_access: bool,
    pcr: Option<u64>,
    payload: &'a [u8],
}

fn parse_packet(p: &[u8]) -> Option<Packet<'_>> {
    if p.len() != PACKET || p[0] != 0x47 {
        return None;
    }
    let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let unit_start = p[1] & 0x40 != 0;
    let control = (p[3] >> 4) & 3;
    let mut payload_at = 4;
    let (mut random_access, mut pcr) = (false, None);
    if control & 2 != 0 {
        let len = p[4] as usize;
        payload_at = 5 + len;
        if len > 0 {
            let flags = p[5];
            random_access = flags & 0x40 != 0;
            if flags & 0x10 != 0 && len >= 7 {
                let base = (u64::from(p[6]) << 25)
                    | (u64::from(p[7]) << 17)
                    | (u64::from(p[8]) << 9)
                    | (u64::from(p[9]) << 1)
                    | (u64::from(p[10]) >> 7);
                let ext = (u64::from(p[10] & 1) << 8) | u64::from(p[11]);
                pcr = Some(base * 300 + ext);
            }
        }
    }
    let payload = if control & 1 != 0 && payload_at < PACKET {
        &p[payload_at..]
    } else {
        &[]
    };
    Some(Packet {
        pid,
        unit_start,
        random_access,
        pcr,
        payload,
    })
}

/// A PES header's PTS (90 kHz), if it starts a video PES.
fn video_pes_pts(payload: &[u8]) -> Option<u64> {
    if payload.len() < 14 || payload[..3] != [0, 0, 1] || payload[3] & 0xf0 != 0xe0 {
        return None;
    }
    if payload[7] & 0x80 == 0 {
        return None;
    }
    let b = &payload[9..14];
    Some(
        (u64::from(b[0] >> 1) & 7) << 30
            | u64::from(b[1]) << 22
            | u64::from(b[2] >> 1) << 15
            | u64::from(b[3]) << 7
            | u64::from(b[4] >> 1),
    )
}

/// Whether an H.264 access unit's first bytes hold an IDR slice or an SPS.
fn starts_keyframe(payload: &[u8]) -> bool {
    payload
        .windows(4)
        .any(|w| w[..3] == [0, 0, 1] && matches!(w[3] & 0x1f, 5 | 7))
}

/// Paced chunks and keyframes of a TS file.
fn index(bytes: &[u8]) -> anyhow::Result<(Vec<Chunk>, Vec<Keyframe>)> {
    anyhow::ensure!(bytes.len().is_multiple_of(PACKET), "not whole TS packets");
    let count = bytes.len() / PACKET;
    let mut pcr_points: Vec<(usize, u64)> = vec![];
    let mut pcr_pid = None;
    let mut video_pid = None;
    // (first packet, pts) of each keyframe, and the last packet of each
    // video PES (the one before the next PES of that PID starts).
    let mut key_starts: Vec<(usize, u64)> = vec![];
    let mut pes_starts: Vec<usize> = vec![];
    for i in 0..count {
        let packet = parse_packet(&bytes[i * PACKET..(i + 1) * PACKET])
            .ok_or_else(|| anyhow::anyhow!("lost TS sync at packet {i}"))?;
        if let Some(pcr) = packet.pcr {
            if *pcr_pid.get_or_insert(packet.pid) == packet.pid {
                pcr_points.push((i, pcr));
            }
        }
        if !packet.unit_start {
            continue;
        }
        let Some(pts) = video_pes_pts(packet.payload) else {
            continue;
        };
        if *video_pid.get_or_insert(packet.pid) != packet.pid {
            continue;
        }
        pes_starts.push(i);
        let header_len = 9 + packet.payload[8] as usize;
        let es = packet.payload.get(header_len..).unwrap_or_default();
        if packet.random_access || starts_keyframe(es) {
            key_starts.push((i, pts));
        }
    }
    anyhow::ensure!(pcr_points.len() >= 2, "fewer than two PCRs");
    let video_pid = video_pid.ok_or_else(|| anyhow::anyhow!("no H.264 video"))?;

    // Packet i is sent at its PCR time, interpolated between PCRs.
    let first_pcr = pcr_points[0].1;
    let time_of = |i: usize| -> Duration {
        let after = pcr_points.partition_point(|&(p, _)| p <= i);
        let (a, b) = match after {
            0 => (pcr_points[0], pcr_points[1]),
            n if n >= pcr_points.len() => (pcr_points[n - 2], pcr_points[n - 1]),
            n => (pcr_points[n - 1], pcr_points[n]),
        };
        let rate = (b.1 - a.1) as f64 / (b.0 - a.0) as f64;
        let pcr = a.1 as f64 + (i as f64 - a.0 as f64) * rate;
        Duration::from_secs_f64(((pcr - first_pcr as f64) / 27e6).max(0.0))
    };
    let chunks = (0..count)
        .step_by(PACKETS_PER_CHUNK)
        .map(|first| Chunk {
            start: first * PACKET,
            end: ((first + PACKETS_PER_CHUNK).min(count)) * PACKET,
            at: time_of(first),
        })
        .collect();

    // A keyframe ends at the last packet of its PID before the next PES.
    let last_video_packet_before = |next_pes: usize| -> usize {
        (0..next_pes)
            .rev()
            .find(|&i| {
                let p = &bytes[i * PACKET..(i + 1) * PACKET];
                parse_packet(p).map(|p| p.pid) == Some(video_pid)
            })
            .unwrap_or(next_pes)
    };
    let keyframes = key_starts
        .iter()
        .map(|&(start, pts)| {
            let next_pes = pes_starts
                .iter()
                .copied()
                .find(|&p| p > start)
                .unwrap_or(count);
            Keyframe {
                last_chunk: last_video_packet_before(next_pes) / PACKETS_PER_CHUNK,
                pts,
            }
        })
        .collect();
    Ok((chunks, keyframes))
}
