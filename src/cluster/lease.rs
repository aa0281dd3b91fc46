//! A held session lease: renewed in the background every
//! [`super::LEASE_RENEW_EVERY`] while the session runs, given up when the
//! session ends (dropped). [`SessionLease::lost`] fires when another node
//! has taken it over: the session then ends, so that this node does not go
//! on with a stream that is someone else's now.
//!
//! While renewals fail (the database is out of reach) the session goes
//! on: nobody can take the lease without the database either, and the
//! renewal that gets through again succeeds only if the epoch is still
//! this session's (a lease that lapsed meanwhile but was not taken is
//! simply held again). A database restart thus ends no session.

use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Reachability, LEASE_RENEW_EVERY, LEASE_TTL};
use crate::registry::cluster::{Fence, Lease};
use crate::registry::Registry;

/// A lease held for a session.
pub struct SessionLease {
    fence: Fence,
    lost: CancellationToken,
    /// Stops the renewals (on drop).
    done: CancellationToken,
}

impl SessionLease {
    pub(super) fn start(
        registry: Arc<Registry>,
        reachability: Arc<Reachability>,
        lease: Lease,
    ) -> Self {
        let (lost, done) = (CancellationToken::new(), CancellationToken::new());
        let fence = lease.fence();
        tokio::spawn(renew(
            registry,
            reachability,
            lease,
            lost.clone(),
            done.clone(),
        ));
        Self { fence, lost, done }
    }

    /// What the session's writes carry.
    pub fn fence(&self) -> &Fence {
        &self.fence
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
    reachability: Arc<Reachability>,
    lease: Lease,
    lost: CancellationToken,
    done: CancellationToken,
) {
    let mut failing_since: Option<Instant> = None;
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
        let renewed = registry.renew_lease(&lease, LEASE_TTL).await;
        reachability.note(&renewed);
        match renewed {
            Ok(true) => {
                if let Some(since) = failing_since.take() {
                    tracing::info!(stream = %lease.stream, epoch = lease.epoch, after = ?since.elapsed(), "the session's lease is renewed again");
                }
            }
            Ok(false) => {
                tracing::error!(stream = %lease.stream, epoch = lease.epoch, "another node took over the session; ending it here");
                lost.cancel();
                return;
            }
            Err(e) => {
                if failing_since.is_none() {
                    failing_since = Some(Instant::now());
                    tracing::warn!(stream = %lease.stream, error = %e, "cannot renew the session's lease; the session goes on and tries again");
                }
            }
        }
    }
}
