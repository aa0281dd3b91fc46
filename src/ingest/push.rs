//! gRPC `PushMedia` ingest: feeds the MPEG-TS chunks of one client stream
//! into a [`PublishSession`] until the client closes it, the media is
//! refused, the stream is deleted, or the server stops.

use bytes::Bytes;
use futures::{Stream, StreamExt};

use super::session::PublishSession;
use crate::error::Result;

/// Runs a push session to its end; returns the bytes received when the
/// client ended the stream cleanly.
pub async fn run<S>(mut session: PublishSession, first: Bytes, mut rest: S) -> Result<u64>
where
    S: Stream<Item = std::result::Result<Bytes, tonic::Status>> + Unpin,
{
    let stream = session.stream().clone();
    let cancelled = stream.cancelled().clone();
    let mut pending = Some(first);
    // `failure` ends the session in ERROR; `stopped` ends it cleanly but
    // still tells the client the push did not complete.
    let (failure, stopped) = loop {
        if let Some(data) = pending.take().filter(|d| !d.is_empty()) {
            if let Err(e) = session.push(data).await {
                break (Some(e), None);
            }
        }
        let next = tokio::select! {
            _ = cancelled.cancelled() => {
                break (None, Some(stream.end_reason()));
            }
            e = session.failed() => break (Some(e), None),
            next = rest.next() => next,
        };
        match next {
            None => break (None, None),
            Some(Ok(data)) => pending = Some(data),
            Some(Err(status)) => {
                tracing::info!(stream = %stream.stream_ref, %status, "push client went away");
                break (None, None);
            }
        }
    };
    let bytes_received = session.bytes_received();
    let drained = session.finish(failure.as_ref()).await;
    match failure.or(stopped) {
        Some(e) => Err(e),
        // Media refused while draining is an error too, never OK.
        None => drained.map(|()| bytes_received),
    }
}
