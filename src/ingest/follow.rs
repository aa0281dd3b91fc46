//! This node's streams follow the shared registry: a stream created,
//! re-optioned or deleted through any node is applied here as soon as its
//! change is committed ([`crate::registry::StreamChange`], PostgreSQL
//! `LISTEN/NOTIFY`). The node running a stream's session thus applies new
//! processing options at once, stops a deleted stream's session, and
//! takes part in pulling a new pulled stream.
//!
//! Each change is applied by reading the stream again, so changes that
//! arrive out of order or twice come to the same. After the notification
//! connection was lost, every stream is read again ([`resync`]).

use std::collections::HashSet;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Ingest;
use crate::error::Result;
use crate::ids::StreamRef;
use crate::registry::{PgStreamChanges, StreamChange};

/// Pause before a resync that failed is tried again.
const RESYNC_RETRY: Duration = Duration::from_secs(2);

/// Applies every change until `stop`.
pub async fn run(ingest: Ingest, mut changes: PgStreamChanges, stop: CancellationToken) {
    let mut resync_due = false;
    loop {
        let change = tokio::select! {
            change = changes.next() => change,
            _ = tokio::time::sleep(RESYNC_RETRY), if resync_due => StreamChange::Resync,
            _ = stop.cancelled() => return,
        };
        let applied = match &change {
            StreamChange::Changed(stream) => changed(&ingest, stream).await,
            StreamChange::Deleted(stream) => {
                deleted(&ingest, stream);
                Ok(())
            }
            StreamChange::Resync => resync(&ingest).await,
        };
        match applied {
            Ok(()) if matches!(change, StreamChange::Resync) => {
                if resync_due {
                    tracing::info!("streams read again after the notifications were cut");
                }
                resync_due = false;
            }
            Ok(()) => {}
            Err(e) => {
                if !resync_due {
                    tracing::warn!(error = %e, "cannot apply a stream change; reading every stream again later");
                }
                resync_due = true;
            }
        }
    }
}

async fn changed(ingest: &Ingest, stream: &StreamRef) -> Result<()> {
    match ingest
        .registry
        .stream(&stream.organization_id, &stream.stream_id)
        .await?
    {
        Some(record) => ingest.sync_stream(&record),
        // Deleted since.
        None => deleted(ingest, stream),
    }
    Ok(())
}

fn deleted(ingest: &Ingest, stream: &StreamRef) {
    if ingest.hub.get(stream).is_some() {
        ingest.remove_stream(stream);
        tracing::info!(%stream, "stream deleted through another node");
    }
}

/// Reads every stream: adds and updates those of the registry, removes
/// those no longer in it.
async fn resync(ingest: &Ingest) -> Result<()> {
    let records = ingest.registry.all_streams().await?;
    let mut registered = HashSet::with_capacity(records.len());
    for record in &records {
        ingest.sync_stream(record);
        registered.insert(StreamRef::new(&record.organization_id, &record.id));
    }
    for live in ingest.hub.all() {
        if !registered.contains(&live.stream_ref) {
            deleted(ingest, &live.stream_ref);
        }
    }
    Ok(())
}
