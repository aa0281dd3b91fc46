//! RTMP publishers for the tests: ffmpeg (`-f flv`), GStreamer (`flvmux !
//! rtmp2sink`), and a raw client of our own that sends what a real
//! publisher would not (odd chunk sizes, unknown messages, broken tags),
//! made from the FLV tags ffmpeg writes.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Publishes a file over RTMP in real time with ffmpeg, as `-f flv`.
pub fn ffmpeg_rtmp_publish(url: &str, file: &Path) -> Child {
    ffmpeg_flv(url, file, &["-re"])
}

/// Publishes a file over RTMP as fast as ffmpeg reads it (no `-re`).
pub fn ffmpeg_rtmp_publish_fast(url: &str, file: &Path) -> Child {
    ffmpeg_flv(url, file, &[])
}

fn ffmpeg_flv(url: &str, file: &Path, input_args: &[&str]) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .arg("-i")
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Publishes an H.264 + AAC MPEG-TS file over RTMP with GStreamer's
/// `flvmux ! rtmp2sink`, in real time (the sink syncs to the clock).
pub fn gst_rtmp_publish(url: &str, file: &Path) -> Child {
    let pipeline = format!(
        "filesrc location={} ! tsdemux name=d \
         flvmux name=m streamable=true ! rtmp2sink location={url} \
         d. ! queue ! h264parse ! m.video \
         d. ! queue ! aacparse ! m.audio",
        file.display()
    );
    Command::new("gst-launch-1.0")
        .arg("-q")
        .args(pipeline.split_whitespace())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gst-launch-1.0")
}

/// One FLV tag: its type (8 audio, 9 video, 18 data), time and body.
#[derive(Debug, Clone)]
pub struct FlvTag {
    pub kind: u8,
    pub timestamp: u32,
    pub body: Vec<u8>,
}

/// The tags of `file` remuxed to FLV by ffmpeg (no re-encoding).
pub fn flv_tags(file: &Path) -> Vec<FlvTag> {
    flv_tags_of(file, &[])
}

/// [`flv_tags`] of the tracks `maps` picks (all when empty).
fn flv_tags_of(file: &Path, maps: &[&str]) -> Vec<FlvTag> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(maps)
        .args(["-c", "copy", "-f", "flv", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success(), "ffmpeg could not remux to FLV");
    let data = out.stdout;
    assert_eq!(&data[..3], b"FLV");
    let mut at = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize + 4;
    let mut tags = Vec::new();
    while at + 11 <= data.len() {
        let kind = data[at] & 0x1f;
        let size = u32::from_be_bytes([0, data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let timestamp =
            u32::from_be_bytes([data[at + 7], data[at + 4], data[at + 5], data[at + 6]]);
        let body = data[at + 11..at + 11 + size].to_vec();
        tags.push(FlvTag {
            kind,
            timestamp,
            body,
        });
        at += 11 + size + 4;
    }
    tags
}

/// An AMF0 value, for the commands the raw client sends.
pub enum Amf<'a> {
    Str(&'a str),
    Num(f64),
    Null,
    Obj(&'a [(&'a str, Amf<'a>)]),
}

fn amf(value: &Amf, out: &mut Vec<u8>) {
    match value {
        Amf::Str(s) => {
            out.push(2);
            out.extend_from_slice(&(s.len() as u16).to_be_bytes());
            out.extend_from_slice(s.as_bytes());
        }
        Amf::Num(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf::Null => out.push(5),
        Amf::Obj(props) => {
            out.push(3);
            for (k, v) in props.iter() {
                out.extend_from_slice(&(k.len() as u16).to_be_bytes());
                out.extend_from_slice(k.as_bytes());
                amf(v, out);
            }
            out.extend_from_slice(&[0, 0, 9]);
        }
    }
}

/// A raw RTMP client.
pub struct RawRtmp {
    pub io: TcpStream,
    chunk_size: usize,
    /// What the server sent, as read so far.
    pub received: Vec<u8>,
}

impl RawRtmp {
    /// A TCP connection (no handshake yet).
    pub async fn connect(addr: std::net::SocketAddr) -> RawRtmp {
        RawRtmp {
            io: TcpStream::connect(addr).await.expect("connect to RTMP"),
            chunk_size: 128,
            received: Vec::new(),
        }
    }

    /// The plain handshake.
    pub async fn handshake(&mut self) {
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..1536).map(|i| (i % 251) as u8));
        self.io.write_all(&c0c1).await.unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 2 * 1536];
        self.io.read_exact(&mut s0s1s2).await.unwrap();
        assert_eq!(s0s1s2[0], 3);
        self.io.write_all(&s0s1s2[1..1537]).await.unwrap();
    }

    /// Sends a message in chunks of the current chunk size: a type-0
    /// header, then type-3 headers.
    pub async fn send(
        &mut self,
        csid: u8,
        kind: u8,
        stream_id: u32,
        timestamp: u32,
        payload: &[u8],
    ) {
        let mut out = vec![csid];
        let extended = timestamp >= 0xff_ffff;
        out.extend_from_slice(&timestamp.min(0xff_ffff).to_be_bytes()[1..]);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.push(kind);
        out.extend_from_slice(&stream_id.to_le_bytes());
        for (i, chunk) in payload.chunks(self.chunk_size).enumerate() {
            if i > 0 {
                out.push(0xc0 | csid);
            }
            if extended {
                out.extend_from_slice(&timestamp.to_be_bytes());
            }
            out.extend_from_slice(chunk);
        }
        if payload.is_empty() && extended {
            out.extend_from_slice(&timestamp.to_be_bytes());
        }
        self.io.write_all(&out).await.unwrap();
    }

    /// Set Chunk Size, taken for what this client sends next.
    pub async fn set_chunk_size(&mut self, size: u32) {
        self.send(2, 1, 0, 0, &size.to_be_bytes()).await;
        self.chunk_size = (size as usize).clamp(1, 1 << 24);
    }

    /// An AMF0 command.
    pub async fn command(&mut self, stream_id: u32, values: &[Amf<'_>]) {
        let mut payload = Vec::new();
        for value in values {
            amf(value, &mut payload);
        }
        let csid = if stream_id == 0 { 3 } else { 8 };
        self.send(csid, 20, stream_id, 0, &payload).await;
    }

    /// Reads until what the server sent contains `needle`; false when the
    /// server closes or `secs` pass first.
    pub async fn read_until(&mut self, needle: &str, secs: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if self
                .received
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                return true;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => self.received.extend_from_slice(&buf[..n]),
                _ => return false,
            }
        }
    }

    /// Whether the server closed the connection within `secs`.
    pub async fn closed_within(&mut self, secs: u64) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.io.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.received.extend_from_slice(&buf[..n]),
                Err(_) => return false,
            }
        }
    }

    /// Handshake, `connect` to `app`, `createStream`, `publish` with
    /// `stream_key`; returns what the server answered to `publish`
    /// (`NetStream.Publish.Start` when accepted).
    pub async fn publish(
        addr: std::net::SocketAddr,
        app: &str,
        stream_key: &str,
    ) -> (RawRtmp, bool) {
        let mut client = RawRtmp::connect(addr).await;
        client.handshake().await;
        client
            .command(
                0,
                &[
                    Amf::Str("connect"),
                    Amf::Num(1.0),
                    Amf::Obj(&[("app", Amf::Str(app)), ("type", Amf::Str("nonprivate"))]),
                ],
            )
            .await;
        client
            .command(0, &[Amf::Str("createStream"), Amf::Num(2.0), Amf::Null])
            .await;
        client
            .command(
                1,
                &[
                    Amf::Str("publish"),
                    Amf::Num(3.0),
                    Amf::Null,
                    Amf::Str(stream_key),
                    Amf::Str("live"),
                ],
            )
            .await;
        let started = client.read_until("NetStream.Publish.Start", 10).await;
        (client, started)
    }

    /// `deleteStream` of stream 1: the publisher is done.
    pub async fn unpublish(&mut self) {
        self.command(
            1,
            &[
                Amf::Str("deleteStream"),
                Amf::Num(5.0),
                Amf::Null,
                Amf::Num(1.0),
            ],
        )
        .await;
    }

    /// Sends FLV tags as RTMP audio/video/data messages on stream 1.
    pub async fn send_tags(&mut self, tags: &[FlvTag]) {
        for tag in tags {
            let csid = match tag.kind {
                8 => 4,
                9 => 6,
                _ => 5,
            };
            self.send(csid, tag.kind, 1, tag.timestamp, &tag.body).await;
        }
    }
}

/// The tags an Enhanced RTMP publisher sends for `file` (H.265 without
/// B-frames at 30 fps, and AAC), which Debian's ffmpeg 5.1 cannot send
/// itself: video as `hvc1` (a SequenceStart with the decoder
/// configuration record, then CodedFramesX of length-prefixed NAL
/// units), audio as ffmpeg's AAC tags; in time order.
pub fn enhanced_hevc_tags(file: &Path) -> Vec<FlvTag> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
        .args(["-map", "0:v", "-c", "copy", "-f", "hevc", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(out.status.success());
    // Annex-B NAL units, grouped into pictures: non-VCL units go with
    // the next slice (one slice per picture), suffix SEI with the last.
    let data = out.stdout;
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals: Vec<&[u8]> = Vec::new();
    for (k, &start) in starts.iter().enumerate() {
        let mut end = starts.get(k + 1).map_or(data.len(), |next| next - 3);
        while end > start && data[end - 1] == 0 {
            end -= 1;
        }
        nals.push(&data[start..end]);
    }
    let kind = |nal: &[u8]| (nal[0] >> 1) & 0x3f;
    let mut pictures: Vec<(bool, Vec<&[u8]>)> = Vec::new();
    let mut pending = Vec::new();
    let (mut vps, mut sps, mut pps) = (None, None, None);
    for nal in nals {
        match kind(nal) {
            32 => vps = vps.or(Some(nal)),
            33 => sps = sps.or(Some(nal)),
            34 => pps = pps.or(Some(nal)),
            _ => {}
        }
        match kind(nal) {
            t if t < 32 => {
                pending.push(nal);
                pictures.push(((16..=23).contains(&t), std::mem::take(&mut pending)));
            }
            40 => pictures.last_mut().unwrap().1.push(nal),
            35 => {}
            _ => pending.push(nal),
        }
    }
    let mut record = vec![1u8];
    record.extend_from_slice(&[0; 20]);
    record.push(0xff); // 4-byte lengths
    record.push(3);
    for (t, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        let nal = nal.expect("parameter sets");
        record.extend_from_slice(&[0x80 | t, 0, 1]);
        record.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        record.extend_from_slice(nal);
    }
    let mut tags = vec![FlvTag {
        kind: 9,
        timestamp: 0,
        body: [&[0x90u8][..], b"hvc1", &record].concat(),
    }];
    for (n, (key, picture)) in pictures.iter().enumerate() {
        let mut body = vec![if *key { 0x93 } else { 0xa3 }];
        body.extend_from_slice(b"hvc1");
        for nal in picture {
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
        }
        tags.push(FlvTag {
            kind: 9,
            timestamp: (n as u64 * 1000 / 30) as u32,
            body,
        });
    }
    let audio = flv_tags_of(file, &["-map", "0:a"])
        .into_iter()
        .filter(|t| t.kind == 8);
    tags.extend(audio);
    tags.sort_by_key(|t| t.timestamp);
    tags
}
