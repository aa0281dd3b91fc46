//! A held session lease: renewed in the background every
//! [`super::LEASE_RENEW_EVERY`] while the session runs, given up when the
//! session ends (dropped). [`SessionLease::lost`] fires when it cannot be
//! held any more: another node took it over, or no renewal has gone
//! through for nearly [`super::LEASE_TTL`] (the database is out of reach,
//! and another node may take over as soon as the lease lapses). The
//! session then ends, so that two nodes never run the same stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{LEASE_RENEW_EVERY, LEASE_TTL};
use crate::registry::cluster::Lease;
use crate::registry::Registry;

/// Before the lease would lapse by this node's clock, the session ends:
/// room for the two clocks' drift and the time a renewal took to land.
const SAFETY_MARGIN: Duration = Duration::from_secs(2);

/// A lease held for a session.
pub struct SessionLease {
    lost: CancellationToken,
    /// Stops the renewals (on drop).
    done: CancellationToken,
}

impl SessionLease {
    pub(super) fn start(registry: Arc<Registry>, lease: Lease) -> Self {
        let (lost, done) = (CancellationToken::new(), CancellationToken::new());
        tokio::spawn(renew(registry, lease, lost.clone(), done.clone()));
        Self { lost, done }
    }

    /// Fires when the lease is lost; the session must end.
    pub fn lost(&self) -> &CancellationToken {
        &self.lost
    }
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        self.done.cancel();
    }
}

/// Renews until the session ends (then releases) or the lease is lost.
async fn renew(
    registry: Arc<Registry>,
    lease: Lease,
    lost: CancellationToken,
    done: CancellationToken,
) {
    // Sent at or before the database's clock read `now()` for the expiry:
    // the lease lasts at least LEASE_TTL from here.
    let mut renewed_at = Instant::now();
    loop {
        tokio::select! {
            _ = done.cancelled() => {
                if let Err(e) = registry.release_lease(&lease).await {
                    // It lapses by itself.
                    tracing::warn!(stream = %lease.stream, error = %e, "cannot release the session's lease");
                }
                return;
            }
            _ = tokio::time::sleep(LEASE_RENEW_EVERY) => {}
        }
        let sent = Instant::now();
        let deadline = (renewed_at + LEASE_TTL).saturating_duration_since(sent + SAFETY_MARGIN);
        let answer = tokio::time::timeout(deadline, registry.renew_lease(&lease, LEASE_TTL)).await;
        match answer {
            Ok(Ok(true)) => renewed_at = sent,
            Ok(Ok(false)) => {
                tracing::error!(stream = %lease.stream, epoch = lease.epoch, "another node took over the session; ending it here");
                lost.cancel();
                return;
            }
            Ok(Err(e)) if sent + SAFETY_MARGIN < renewed_at + LEASE_TTL => {
                tracing::warn!(stream = %lease.stream, error = %e, "cannot renew the session's lease; trying again");
            }
            Ok(Err(_)) | Err(_) => {
                tracing::error!(stream = %lease.stream, epoch = lease.epoch, "the session's lease could not be renewed in time; ending it here");
                lost.cancel();
                return;
            }
        }
    }
}
