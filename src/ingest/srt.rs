//! The SRT listener: one UDP port for every stream. A caller (ffmpeg, OBS,
//! a hardware encoder) names the stream and proves it may publish with its
//! SRT `streamid`, checked *before* the connection is accepted:
//!
//! - `publish:<stream_id>:<stream_key>` (liveproc's form), or
//! - `#!::r=<stream_id>,s=<stream_key>,m=publish` (the SRT access-control
//!   convention used by many encoders).
//!
//! An accepted connection becomes a [`PublishSession`] fed with each SRT
//! payload (MPEG-TS) as it arrives; the session ends when the caller leaves.

use std::net::SocketAddr;

use std::sync::Arc;

use futures::StreamExt;
use srt_protocol::packet::{RejectReason, ServerRejectReason};
use srt_tokio::{ConnectionRequest, SrtListener};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::Ingest;
use crate::error::Error;
use crate::streams::{LiveStream, PublisherKind};

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

/// Binds the SRT listener; returns its bound address and the accept loop to
/// run until `shutdown`.
pub async fn bind(
    listen: SocketAddr,
    ingest: Ingest,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = ()>)> {
    // Bind the UDP socket ourselves so that port 0 yields a known port.
    let socket = tokio::net::UdpSocket::bind(listen).await?;
    let local = socket.local_addr()?;
    let (listener, mut incoming) = SrtListener::builder().socket(socket).bind(local).await?;
    let accept_loop = async move {
        let _listener = listener;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                request = incoming.incoming().next() => {
                    let Some(request) = request else { break };
                    let ingest_for_task = ingest.clone();
                    ingest.sessions.spawn(handle(request, ingest_for_task));
                }
            }
        }
        tracing::info!("SRT listener stopped");
    };
    Ok((local, accept_loop))
}

async fn reject(request: ConnectionRequest, reason: ServerRejectReason, why: &str) {
    tracing::info!(remote = %request.remote(), why, "SRT caller rejected");
    let _ = request.reject(RejectReason::Server(reason)).await;
}

async fn handle(request: ConnectionRequest, ingest: Ingest) {
    let remote = request.remote();
    let Some(publish) = request
        .stream_id()
        .and_then(|id| parse_stream_id(id.as_ref()))
    else {
        return reject(
            request,
            ServerRejectReason::BadRequest,
            "streamid is not publish:<stream_id>:<stream_key>",
        )
        .await;
    };
    let stream = match ingest.authorize_publish(&publish.stream_id, &publish.stream_key) {
        Ok(stream) => stream,
        Err(Error::Storage(e)) => {
            tracing::error!(error = %e, "registry unavailable");
            return reject(request, ServerRejectReason::InternalServerError, "registry").await;
        }
        Err(_) => {
            return reject(
                request,
                ServerRejectReason::Forbidden,
                "unknown stream or wrong key",
            )
            .await
        }
    };
    tracing::info!(stream = %stream.stream_ref, %remote, "SRT publisher authorized");
    let span = tracing::info_span!("stream", id = %stream.stream_ref, ingest = "srt", %remote);
    run_publisher(request, stream, ingest)
        .instrument(span)
        .await;
}

/// Runs an authorized SRT publisher's session to its end.
async fn run_publisher(request: ConnectionRequest, stream: Arc<LiveStream>, ingest: Ingest) {
    let mut session = match ingest.start_session(stream.clone(), PublisherKind::Srt) {
        Ok(session) => session,
        Err(Error::PublisherActive { .. }) => {
            return reject(
                request,
                ServerRejectReason::Conflict,
                "stream already has a publisher",
            )
            .await
        }
        Err(e) => {
            tracing::error!(stream = %stream.stream_ref, error = %e, "cannot start session");
            return reject(request, ServerRejectReason::InternalServerError, "pipeline").await;
        }
    };
    let mut socket = match request.accept(None).await {
        Ok(socket) => socket,
        Err(e) => {
            tracing::warn!(stream = %stream.stream_ref, error = %e, "SRT accept failed");
            // The stream's state says how the session ended; the caller is gone.
            let _ = session.finish(None).await;
            return;
        }
    };

    let cancelled = stream.cancelled().clone();
    let mut failure = None;
    loop {
        tokio::select! {
            _ = cancelled.cancelled() => break,
            e = session.failed() => {
                failure = Some(e);
                break;
            }
            packet = socket.next() => match packet {
                Some(Ok((_, data))) => {
                    if let Err(e) = session.push(data).await {
                        failure = Some(e);
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::info!(stream = %stream.stream_ref, error = %e, "SRT connection lost");
                    break;
                }
                None => break,
            }
        }
    }
    drop(socket);
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
