//! Stream changes as the database announces them (`LISTEN
//! liveproc_streams`; the trigger is in `migrations/0005_stream_notify.sql`).
//! A lost connection loses the notifications sent meanwhile, so after one
//! the listener says [`StreamChange::Resync`]: read every stream again.

use std::time::Duration;

use sqlx::postgres::PgListener;

use super::{storage_error, PgRegistry};
use crate::error::Result;
use crate::ids::StreamRef;
use crate::registry::StreamChange;

const CHANNEL: &str = "liveproc_streams";
/// Pause after the listener failed to reconnect.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A notification's payload.
#[derive(serde::Deserialize)]
struct Payload {
    op: String,
    organization_id: String,
    stream_id: String,
}

/// Follows the streams table.
pub struct PgStreamChanges {
    listener: PgListener,
}

impl PgRegistry {
    /// Starts listening (one connection of the pool, held for good).
    pub async fn stream_changes(&self) -> Result<PgStreamChanges> {
        let mut listener = PgListener::connect_with(&self.pool)
            .await
            .map_err(storage_error)?;
        listener.listen(CHANNEL).await.map_err(storage_error)?;
        Ok(PgStreamChanges { listener })
    }
}

impl PgStreamChanges {
    /// The next change; `Resync` after the connection was lost.
    pub async fn next(&mut self) -> StreamChange {
        loop {
            match self.listener.try_recv().await {
                Ok(Some(notification)) => {
                    match serde_json::from_str::<Payload>(notification.payload()) {
                        Ok(p) => {
                            let stream = StreamRef::new(&p.organization_id, &p.stream_id);
                            return match p.op.as_str() {
                                "delete" => StreamChange::Deleted(stream),
                                _ => StreamChange::Changed(stream),
                            };
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "unreadable stream notification");
                        }
                    }
                }
                // Reconnected: what was sent meanwhile is lost.
                Ok(None) => return StreamChange::Resync,
                Err(e) => {
                    tracing::warn!(error = %storage_error(e), "the stream notifications' connection failed; reconnecting");
                    tokio::time::sleep(RETRY_AFTER).await;
                    return StreamChange::Resync;
                }
            }
        }
    }
}
