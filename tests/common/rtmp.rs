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
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ffmpeg")
}

/// Publishes a file over RTMP as fast as ffmpeg reads it (no `-re`).
pub fn ffmpeg_rtmp_publish_fast(url: &str, file: &Path) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
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
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-i"])
        .arg(file)
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
