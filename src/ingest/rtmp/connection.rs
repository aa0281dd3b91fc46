//! One RTMP connection, in its own task, from the handshake to the end of
//! its publisher's session:
//!
//! 1. **Setup**, within [`SETUP_TIMEOUT`] of the connection: the
//!    handshake, then the commands of a publisher (`connect` to the
//!    `live` application, `releaseStream`, `FCPublish`, `createStream`,
//!    `publish <stream key>`). Messages are small here ([`SETUP_LIMITS`]),
//!    and media sent before `publish` is dropped. The key is checked at
//!    `publish`, before any media is kept; a refusal tells the publisher
//!    why (`onStatus` with level `error`) and logs the reason, never the
//!    key.
//! 2. **Publishing**: audio and video messages go through [`FlvReader`]
//!    into the stream's [`PublishSession`], in this task. The session
//!    waits when the publisher is ahead of real time, and not reading is
//!    TCP backpressure on that publisher alone. It ends when the
//!    publisher unpublishes or leaves, sends nothing for
//!    [`IDLE_TIMEOUT`], breaks the protocol, or the stream is stopped.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::amf0::{self, Amf};
use super::chunk::{ChunkError, ChunkReader, Message};
use super::flv::FlvReader;
use super::handshake;
use super::messages::{self as m, Outbox};
use super::RTMP_APP;
use crate::error::Error;
use crate::ingest::session::PublishSession;
use crate::ingest::Ingest;
use crate::streams::PublisherKind;

/// From the connection to an authorized `publish`.
pub const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher that sends nothing for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an unpublished connection is left for its publisher to close.
const LINGER: Duration = Duration::from_secs(5);
/// Our (small) answers must be taken within this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// (largest message, bytes of unfinished messages) before `publish`:
/// commands only.
const SETUP_LIMITS: (usize, usize) = (64 * 1024, 256 * 1024);
/// ... and for an authorized publisher: RTMP's largest message.
const PUBLISH_LIMITS: (usize, usize) = (0xff_ffff, 32 << 20);
/// Bytes read at a time before and after `publish`.
const SETUP_READ: usize = 4096;
const PUBLISH_READ: usize = 64 * 1024;

/// How a connection ended, for its log line.
#[derive(Debug, thiserror::Error)]
enum Ended {
    #[error("the publisher left")]
    Closed,
    #[error("nothing received for {} s", .0.as_secs())]
    Idle(Duration),
    #[error("RTMP protocol error: {0}")]
    Protocol(#[from] ChunkError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Handshake(String),
    #[error("{0}")]
    Refused(String),
}

/// What a connection runs over: TCP (RTMP) or TLS over TCP (RTMPS).
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Transport for T {}

struct Connection {
    io: Box<dyn Transport>,
    remote: SocketAddr,
    buf: BytesMut,
    reader: ChunkReader,
    outbox: Outbox,
    /// Bytes received, and when we last acknowledged them.
    received: u64,
    acknowledged: u64,
    /// The peer's acknowledgement window (0: none asked).
    peer_window: u64,
    /// Message types already logged as ignored.
    ignored: Vec<u8>,
}

/// Serves one accepted connection to its end.
pub async fn serve(
    io: impl Transport + 'static,
    remote: SocketAddr,
    ingest: Ingest,
    shutdown: CancellationToken,
) {
    let mut connection = Connection {
        io: Box::new(io),
        remote,
        buf: BytesMut::new(),
        reader: ChunkReader::new(SETUP_LIMITS.0, SETUP_LIMITS.1),
        outbox: Outbox::default(),
        received: 0,
        acknowledged: 0,
        peer_window: 0,
        ignored: Vec::new(),
    };
    let setup = tokio::select! {
        _ = shutdown.cancelled() => return,
        setup = tokio::time::timeout(SETUP_TIMEOUT, connection.setup(&ingest)) => setup,
    };
    let session = match setup {
        Ok(Ok(publishing)) => publishing,
        Ok(Err(ended)) => {
            // Answers already made (a refusal's reason) go out first.
            let _ = connection.flush().await;
            match ended {
                Ended::Closed => tracing::debug!(%remote, "RTMP client left before publishing"),
                Ended::Refused(reason) => {
                    tracing::info!(%remote, %reason, "RTMP publisher refused")
                }
                other => {
                    tracing::info!(%remote, reason = %other, "RTMP connection closed before publishing")
                }
            }
            return;
        }
        Err(_) => {
            tracing::info!(%remote, timeout_s = SETUP_TIMEOUT.as_secs(), "RTMP connection closed: no publish in time");
            return;
        }
    };
    let span = tracing::info_span!("stream", organization = %session.stream().stream_ref.organization_id, stream = %session.stream().stream_ref.stream_id, ingest = "rtmp", %remote);
    connection.publish(session).instrument(span).await;
}

impl Connection {
    /// Sends what the outbox holds.
    async fn flush(&mut self) -> Result<(), Ended> {
        if self.outbox.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.outbox.out);
        match tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(&out)).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(Ended::Refused(
                "the client does not read our answers".into(),
            )),
        }
    }

    /// The next message (reading as needed); cancel-safe: what was read
    /// stays in the buffer, and nothing is written here.
    async fn next_message(&mut self, read_size: usize, idle: Duration) -> Result<Message, Ended> {
        loop {
            if let Some(message) = self.reader.read(&mut self.buf)? {
                return Ok(message);
            }
            self.buf.reserve(read_size);
            let read = tokio::time::timeout(idle, self.io.read_buf(&mut self.buf)).await;
            let n = read.map_err(|_| Ended::Idle(idle))??;
            if n == 0 {
                return Err(Ended::Closed);
            }
            self.received += n as u64;
            if self.peer_window > 0 && self.received - self.acknowledged >= self.peer_window {
                self.acknowledged = self.received;
                self.outbox.acknowledge(self.received);
            }
        }
    }

    /// Takes a protocol control message; false when `message` is not one.
    fn control(&mut self, message: &Message) -> Result<bool, Ended> {
        let payload = &message.payload;
        let word = || {
            payload
                .get(..4)
                .map(|b| u32::from_be_bytes(b.try_into().expect("4")))
        };
        match message.kind {
            m::SET_CHUNK_SIZE => {
                let size = word().ok_or(ChunkError::ZeroChunkSize)?;
                self.reader.set_chunk_size(size)?;
            }
            m::ABORT => {
                if let Some(csid) = word() {
                    self.reader.abort(csid);
                }
            }
            m::WINDOW_ACK_SIZE => self.peer_window = u64::from(word().unwrap_or(0)),
            m::USER_CONTROL => self.outbox.answer_user_control(payload),
            m::ACKNOWLEDGEMENT | m::SET_PEER_BANDWIDTH => {}
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Logs once per connection a message type that is not used.
    fn ignore(&mut self, kind: u8) {
        if !self.ignored.contains(&kind) {
            self.ignored.push(kind);
            tracing::info!(remote = %self.remote, kind, "ignoring RTMP messages of this type");
        }
    }

    /// Handshake and commands up to an authorized `publish`: its session.
    async fn setup(&mut self, ingest: &Ingest) -> Result<PublishSession, Ended> {
        handshake::accept(&mut self.io, &mut self.buf)
            .await
            .map_err(|e| match e {
                handshake::HandshakeError::Closed => Ended::Closed,
                other => Ended::Handshake(other.to_string()),
            })?;
        let mut connected = false;
        loop {
            // The setup's own deadline applies, not the idle timeout.
            let message = self.next_message(SETUP_READ, 2 * SETUP_TIMEOUT).await?;
            if self.control(&message)? {
                self.flush().await?;
                continue;
            }
            let Some(values) = command_values(&message) else {
                match message.kind {
                    // Media before `publish`, metadata: not kept.
                    m::AUDIO | m::VIDEO | m::DATA_AMF0 | m::DATA_AMF3 => {}
                    kind => self.ignore(kind),
                }
                continue;
            };
            let values = values.map_err(|e| Ended::Refused(e.to_string()))?;
            let name = values.first().and_then(Amf::as_str).unwrap_or_default();
            let txn = values.get(1).and_then(Amf::as_number).unwrap_or(0.0);
            match name {
                "connect" => {
                    let app = values
                        .get(2)
                        .and_then(|o| o.get("app"))
                        .and_then(Amf::as_str)
                        .unwrap_or_default();
                    let app = app.split('?').next().unwrap_or_default().trim_matches('/');
                    if app != RTMP_APP {
                        let reason = format!(
                            "unknown application {:?}: publish to rtmp://<host>:<port>/{RTMP_APP}/<stream key>",
                            bounded(app)
                        );
                        self.outbox
                            .error(txn, "NetConnection.Connect.Rejected", &reason);
                        return Err(Ended::Refused(reason));
                    }
                    self.outbox.connection_setup();
                    let (properties, information) = m::connect_result();
                    self.outbox.result(txn, properties, information);
                    connected = true;
                }
                "createStream" => self.outbox.result(txn, Amf::Null, Amf::Number(1.0)),
                "releaseStream" | "FCPublish" | "_checkbw" => {
                    self.outbox.result(txn, Amf::Null, Amf::Undefined)
                }
                "publish" if connected => {
                    let stream_name = values.get(3).and_then(Amf::as_str).unwrap_or_default();
                    match self.authorize(ingest, stream_name).await {
                        Ok(session) => {
                            self.outbox.stream_begin(message.stream_id);
                            self.outbox.on_status(
                                message.stream_id,
                                "status",
                                "NetStream.Publish.Start",
                                "Publishing.",
                            );
                            self.flush().await?;
                            return Ok(session);
                        }
                        Err(reason) => {
                            self.outbox.on_status(
                                message.stream_id,
                                "error",
                                "NetStream.Publish.BadName",
                                &reason,
                            );
                            return Err(Ended::Refused(reason));
                        }
                    }
                }
                "publish" => return Err(Ended::Refused("publish before connect".into())),
                "deleteStream" | "FCUnpublish" | "closeStream" => return Err(Ended::Closed),
                "play" => {
                    let reason = "playing is not offered over RTMP: use HLS or the API".to_string();
                    self.outbox.on_status(
                        message.stream_id,
                        "error",
                        "NetStream.Play.Failed",
                        &reason,
                    );
                    return Err(Ended::Refused(reason));
                }
                _ => {}
            }
            self.flush().await?;
        }
    }

    /// Checks the stream key of `publish` and starts the stream's
    /// session; the reason for the publisher when refused.
    async fn authorize(
        &self,
        ingest: &Ingest,
        stream_name: &str,
    ) -> Result<PublishSession, String> {
        // OBS and others may add `?query` to the key.
        let key = stream_name.split('?').next().unwrap_or_default();
        if key.is_empty() {
            return Err(format!(
                "no stream key: publish to rtmp://<host>:<port>/{RTMP_APP}/<stream key>"
            ));
        }
        let stream = match ingest.authorize_publish_key(key).await {
            Ok(stream) => stream,
            Err(Error::Storage(e) | Error::StorageUnavailable(e) | Error::StorageFull(e)) => {
                tracing::error!(error = %e, "registry unavailable");
                return Err("the server cannot check stream keys now: try again".into());
            }
            Err(_) => return Err("unknown stream key".into()),
        };
        let span = tracing::info_span!("stream", organization = %stream.stream_ref.organization_id, stream = %stream.stream_ref.stream_id, ingest = "rtmp", remote = %self.remote);
        match ingest
            .start_session(stream.clone(), PublisherKind::Rtmp, key)
            .instrument(span)
            .await
        {
            Ok(session) => {
                tracing::info!(stream = %stream.stream_ref, remote = %self.remote, "RTMP publisher authorized");
                Ok(session)
            }
            Err(
                e @ (Error::PublisherActive { .. }
                | Error::NodeFull { .. }
                | Error::NodeOverloaded { .. }
                | Error::QuotaExceeded { .. }),
            ) => Err(e.to_string()),
            Err(Error::KeyRotated { .. }) => Err("unknown stream key".into()),
            Err(e) => {
                tracing::error!(stream = %stream.stream_ref, error = %e, "cannot start session");
                Err("the server cannot start the session now: try again".into())
            }
        }
    }

    /// Feeds the publisher's media into `session` until it ends.
    async fn publish(mut self, mut session: PublishSession) {
        self.reader.set_limits(PUBLISH_LIMITS.0, PUBLISH_LIMITS.1);
        let cancelled = session.stream().cancelled().clone();
        let mut flv = FlvReader::default();
        let mut dropped = 0u64;
        let mut failure = None;
        let mut unpublished = false;
        let ended = loop {
            let message = tokio::select! {
                _ = cancelled.cancelled() => break None,
                e = session.failed() => {
                    failure = Some(e);
                    break None;
                }
                message = self.next_message(PUBLISH_READ, IDLE_TIMEOUT) => message,
            };
            let message = match message {
                Ok(message) => message,
                Err(ended) => break Some(ended),
            };
            let media = match message.kind {
                m::VIDEO => flv.video(message.timestamp, message.payload),
                m::AUDIO => flv.audio(message.timestamp, message.payload),
                m::DATA_AMF0 | m::DATA_AMF3 => Ok(None),
                _ => match self.control(&message) {
                    Ok(true) => Ok(None),
                    Ok(false) => {
                        if let Some(Ok(values)) = command_values(&message) {
                            let name = values.first().and_then(Amf::as_str).unwrap_or_default();
                            if matches!(name, "deleteStream" | "FCUnpublish" | "closeStream") {
                                unpublished = true;
                                break None;
                            }
                        } else {
                            self.ignore(message.kind);
                        }
                        Ok(None)
                    }
                    Err(ended) => break Some(ended),
                },
            };
            match media {
                Ok(Some(media)) => session.push_elementary(media).await,
                Ok(None) => {}
                Err(reason) => {
                    if dropped == 0 {
                        tracing::warn!(%reason, "dropping a malformed FLV tag (later ones are counted)");
                    }
                    dropped += 1;
                }
            }
            if let Err(ended) = self.flush().await {
                break Some(ended);
            }
        };
        if dropped > 0 {
            tracing::warn!(dropped, "malformed FLV tags dropped in this session");
        }
        let failure = failure.or(match ended {
            Some(Ended::Protocol(e)) => Some(Error::InvalidMedia {
                stream_id: session.stream().stream_ref.stream_id.clone(),
                reason: format!("RTMP protocol error: {e}"),
            }),
            Some(ended) => {
                tracing::info!(reason = %ended, "RTMP publisher gone");
                None
            }
            None => None,
        });
        let _ = session.finish(failure.as_ref()).await;
        if unpublished {
            self.linger().await;
        }
        let _ = self.io.shutdown().await;
    }

    /// After an unpublish, lets the publisher finish what it says (the
    /// rest of its unpublish commands) and close the connection itself:
    /// publishers report a connection closed under them as an error.
    async fn linger(&mut self) {
        let deadline = tokio::time::Instant::now() + LINGER;
        while let Ok(Ok(_)) =
            tokio::time::timeout_at(deadline, self.next_message(SETUP_READ, LINGER)).await
        {
            if self.flush().await.is_err() {
                return;
            }
        }
    }
}

/// The values of a command message (AMF0, or AMF3's form of it, which
/// starts with a zero byte then AMF0); `None` when it is not a command.
fn command_values(message: &Message) -> Option<Result<Vec<Amf>, amf0::AmfError>> {
    match message.kind {
        m::COMMAND_AMF0 => Some(amf0::decode_all(&message.payload)),
        m::COMMAND_AMF3 => Some(amf0::decode_all(
            message.payload.get(1..).unwrap_or_default(),
        )),
        _ => None,
    }
}

/// At most 64 characters of something the client sent, for messages.
fn bounded(text: &str) -> String {
    text.chars().take(64).collect()
}
