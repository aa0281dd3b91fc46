//! The SRT listener: one UDP port for every stream. A caller (ffmpeg, OBS,
//! a hardware encoder) names the stream and proves it may publish with its
//! SRT `streamid`, checked *before* the connection is accepted:
//!
//! - `publish:<stream_id>:<stream_key>` (liveproc's form), or
//! - `#!::r=<stream_id>,s=<stream_key>,m=publish` (the SRT access-control
//!   convention used by many encoders).
//!
//! A stream may require SRT's own AES encryption ([`encryption`]): its
//! callers must then encrypt with its passphrase (and key length, when
//! fixed), checked in the same decision.
//!
//! SRT itself runs on a few receive threads ([`shard`]), each with its own
//! socket of the port ([`datagrams`]); the acceptor here decides who may
//! publish, and an accepted connection feeds a [`PublishSession`] task with
//! its payloads (MPEG-TS) in batches. The session ends when the caller
//! leaves.

mod datagrams;
mod encryption;
mod shard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use srt_protocol::options::SocketOptions;
use srt_protocol::packet::{RejectReason, ServerRejectReason};
use srt_protocol::settings::ConnInitSettings;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::datagrams::Datagrams;
use self::shard::{AccessDecision, AccessRequest, Payloads, Shard, Verdict};
use super::session::PublishSession;
use super::Ingest;
use crate::error::Error;
use crate::headroom::{Headroom, Persistent};
use crate::streams::PublisherKind;

/// Access requests waiting for the acceptor; past this, callers are
/// refused as overloaded.
const PENDING_REQUESTS: usize = 256;
/// Deliveries (about 20 ms of media each) a session may have waiting
/// before its receive thread drops its payloads: 2.5 s.
const SESSION_QUEUE: usize = 128;

/// A publisher's request parsed from its SRT `streamid`.
#[derive(Debug, PartialEq, Eq)]
pub struct PublishRequest {
    pub stream_id: String,
    pub stream_key: String,
}

/// Parses an SRT `streamid` into a publish request.
pub fn parse_stream_id(raw: &str) -> Option<PublishRequest> {
    if let Some(rest) = raw.strip_prefix("publish:") {
        let (stream_id, stream_key) = rest.split_once(':')?;
        return (!stream_id.is_empty() && !stream_key.is_empty()).then(|| PublishRequest {
            stream_id: stream_id.to_string(),
            stream_key: stream_key.to_string(),
        });
    }
    let body = raw.strip_prefix("#!::")?;
    let (mut resource, mut key, mut mode) = (None, None, "request");
    for pair in body.split(',') {
        match pair.split_once('=') {
            Some(("r", v)) => resource = Some(v),
            Some(("s", v)) => key = Some(v),
            Some(("m", v)) => mode = v,
            _ => {}
        }
    }
    if mode != "publish" {
        return None;
    }
    Some(PublishRequest {
        stream_id: resource.filter(|r| !r.is_empty())?.to_string(),
        stream_key: key.filter(|k| !k.is_empty())?.to_string(),
    })
}

/// Binds the SRT port with `receive_threads` sockets and starts their
/// threads, which tell `headroom` how far behind their sockets they are;
/// returns the bound address and the acceptor, to run until `shutdown`
/// (it returns once every receive thread has stopped).
pub async fn bind(
    listen: SocketAddr,
    receive_threads: usize,
    ingest: Ingest,
    headroom: Arc<Headroom>,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    let sockets = datagrams::bind_group(listen, receive_threads.max(1))?;
    let local = sockets[0].local_addr()?;
    let settings = ConnInitSettings::from(SocketOptions::default());
    let (requests, incoming) = mpsc::channel(PENDING_REQUESTS);
    let mut threads = Vec::new();
    for (index, socket) in sockets.into_iter().enumerate() {
        let (settings, requests, shutdown) = (settings.clone(), requests.clone(), shutdown.clone());
        let headroom = Arc::clone(&headroom);
        let receive = move || {
            let shard = Datagrams::new(socket)
                .and_then(|io| Shard::new(io, settings, requests, headroom, shutdown));
            match shard {
                Ok(shard) => shard.run(),
                Err(e) => tracing::error!(error = %e, "SRT receive thread cannot start"),
            }
        };
        threads.push(
            std::thread::Builder::new()
                .name(format!("srt-receive-{index}"))
                .spawn(receive)?,
        );
    }
    drop(requests);
    tracing::info!(%local, receive_threads = threads.len(), "SRT listener bound");
    let acceptor = async move {
        accept(incoming, ingest, shutdown).await;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        tracing::info!("SRT listener stopped");
    };
    Ok((local, acceptor))
}

/// Decides every access request until shutdown.
async fn accept(
    mut incoming: mpsc::Receiver<AccessRequest>,
    ingest: Ingest,
    shutdown: CancellationToken,
) {
    loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => return,
            request = incoming.recv() => match request {
                Some(request) => request,
                None => return,
            },
        };
        // Each caller is decided in its own task: a registry that is slow
        // to answer holds up no other caller.
        let ingest = ingest.clone();
        tokio::spawn(async move {
            let verdict = decide(&ingest, &request).await;
            let _ = request.reply.send(AccessDecision {
                remote: request.remote,
                verdict,
            });
        });
    }
}

/// Authorizes a caller and starts its session, or says why not.
async fn decide(ingest: &Ingest, request: &AccessRequest) -> Verdict {
    let remote = request.remote;
    let reject = |reason: RejectReason, why: &str| {
        tracing::info!(%remote, why, "SRT caller rejected");
        Verdict::Reject(reason)
    };
    let Some(publish) = request.stream_id.as_deref().and_then(parse_stream_id) else {
        return reject(
            ServerRejectReason::BadRequest.into(),
            "streamid is not publish:<stream_id>:<stream_key>",
        );
    };
    let record = match ingest
        .publish_record(&publish.stream_id, &publish.stream_key)
        .await
    {
        Ok(record) => record,
        Err(Error::Storage(e) | Error::StorageUnavailable(e) | Error::StorageFull(e)) => {
            tracing::error!(error = %e, "registry unavailable");
            return reject(ServerRejectReason::InternalServerError.into(), "registry");
        }
        Err(_) => {
            return reject(
                ServerRejectReason::Forbidden.into(),
                "unknown stream or wrong key",
            )
        }
    };
    let key = match encryption::check(record.srt_encryption.as_ref(), &request.key) {
        Ok(key) => key,
        Err(refusal) => return reject(refusal.reason, &refusal.why),
    };
    let stream = ingest.live(&record);
    let span = tracing::info_span!("stream", organization = %stream.stream_ref.organization_id, stream = %stream.stream_ref.stream_id, ingest = "srt", %remote);
    let session = match ingest
        .start_session(stream.clone(), PublisherKind::Srt, &record.stream_key)
        .instrument(span.clone())
        .await
    {
        Ok(session) => session,
        Err(Error::PublisherActive { node_id: None, .. }) => {
            return reject(
                ServerRejectReason::Conflict.into(),
                "stream already has a publisher",
            )
        }
        Err(Error::PublisherActive {
            node_id: Some(node),
            ..
        }) => {
            tracing::info!(%remote, %node, "SRT caller rejected: the stream is live on another node");
            return Verdict::Reject(ServerRejectReason::Conflict.into());
        }
        // SRT's "overloaded, or you have exceeded credits".
        Err(
            e @ (Error::NodeFull { .. }
            | Error::NodeOverloaded { .. }
            | Error::QuotaExceeded { .. }),
        ) => {
            tracing::warn!(%remote, reason = %e, "SRT caller rejected");
            return Verdict::Reject(ServerRejectReason::Overload.into());
        }
        Err(Error::Storage(e) | Error::StorageUnavailable(e)) => {
            tracing::error!(error = %e, "registry unavailable");
            return reject(ServerRejectReason::InternalServerError.into(), "registry");
        }
        Err(Error::KeyRotated { .. }) => {
            return reject(
                ServerRejectReason::Forbidden.into(),
                "the stream key was rotated as the caller came",
            )
        }
        Err(e) => {
            tracing::error!(stream = %stream.stream_ref, error = %e, "cannot start session");
            return reject(ServerRejectReason::InternalServerError.into(), "pipeline");
        }
    };
    tracing::info!(stream = %stream.stream_ref, %remote, "SRT publisher authorized");
    let (media, input) = mpsc::channel(SESSION_QUEUE);
    let headroom = Arc::clone(ingest.cluster.headroom());
    ingest
        .sessions
        .spawn(run_publisher(session, input, headroom).instrument(span));
    Verdict::Accept {
        media,
        stream: stream.stream_ref.to_string(),
        key,
    }
}

/// Runs an accepted SRT publisher's session to its end: the caller left
/// (its receive thread closed `input`), the stream was stopped, or its
/// media was refused (then the connection is closed). Tells `headroom`
/// how long its payloads wait in `input`.
async fn run_publisher(
    mut session: PublishSession,
    mut input: mpsc::Receiver<Payloads>,
    headroom: Arc<Headroom>,
) {
    let cancelled = session.stream().cancelled().clone();
    let mut failure = None;
    let mut queued = Persistent::new(Instant::now());
    'session: loop {
        tokio::select! {
            _ = cancelled.cancelled() => break,
            e = session.failed() => {
                failure = Some(e);
                break;
            }
            payloads = input.recv() => match payloads {
                Some(payloads) => {
                    let now = Instant::now();
                    if let Some(least) = queued.note(now - payloads.sent, now) {
                        headroom.note_sessions_lag(least);
                    }
                    for payload in payloads.data {
                        if let Err(e) = session.push(payload).await {
                            failure = Some(e);
                            break 'session;
                        }
                    }
                }
                None => break,
            }
        }
    }
    // Closing the input tells the receive thread to end the connection.
    drop(input);
    // An SRT caller has no status to receive: the stream's state and event
    // say why its media was refused.
    let _ = session.finish(failure.as_ref()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_id_forms() {
        let want = Some(PublishRequest {
            stream_id: "cam1".into(),
            stream_key: "sk_abc".into(),
        });
        assert_eq!(parse_stream_id("publish:cam1:sk_abc"), want);
        assert_eq!(parse_stream_id("#!::r=cam1,s=sk_abc,m=publish"), want);
        assert_eq!(parse_stream_id("#!::r=cam1,s=sk_abc,m=request"), None);
        assert_eq!(parse_stream_id("publish:cam1"), None);
        assert_eq!(parse_stream_id("play:cam1:sk"), None);
        assert_eq!(parse_stream_id(""), None);
    }
}
