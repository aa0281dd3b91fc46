//! This node among the nodes that share one registry: who it is
//! ([`Node`]: `--node-id`, `--advertise-url`, `--max-streams`), its
//! heartbeat ([`heartbeat`]), and the leases by which it holds the live
//! sessions it runs ([`lease`]).
//!
//! A session starts only once this node holds the stream's lease, so a
//! stream is live on at most one node however many publishers call. The
//! lease is renewed while the session runs; a session whose lease was
//! taken over (after this node was paused, or cut off from the database
//! while other nodes were not, for longer than [`LEASE_TTL`]) is ended by
//! this node as soon as it learns of it. With the embedded registry the
//! same holds within the one node.

pub mod heartbeat;
pub mod lease;

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::registry::cluster::LeaseGrant;
use crate::registry::Registry;
use crate::streams::{LiveStream, PublisherGuard, PublisherKind, StreamHub};
use lease::SessionLease;

/// How long a lease lasts without renewal: a publisher of a node that
/// died is taken by another node within this long.
pub const LEASE_TTL: Duration = Duration::from_secs(8);
/// How often a held lease is renewed (four tries before it lapses).
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(2);

/// This node, as the other nodes see it.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    /// Where other nodes reach its gRPC/HTTP listener.
    pub advertise_url: String,
    /// Most live sessions it takes (0: no limit).
    pub max_streams: u32,
}

/// Leases of this node's sessions.
#[derive(Clone)]
pub struct Cluster {
    registry: Arc<Registry>,
    node: Arc<Node>,
    /// This node's streams (to count its sessions).
    hub: Arc<StreamHub>,
}

impl Cluster {
    pub fn new(registry: Arc<Registry>, node: Node, hub: Arc<StreamHub>) -> Self {
        Self {
            registry,
            node: Arc::new(node),
            hub,
        }
    }

    /// Takes `stream` for a session of `kind` on this node: its publisher
    /// slot here, then its lease. Refused while it has a publisher here or
    /// on another node, or this node is full.
    pub async fn claim(
        &self,
        stream: &Arc<LiveStream>,
        kind: PublisherKind,
    ) -> Result<(PublisherGuard, SessionLease)> {
        let publisher = stream.claim_publisher(kind)?;
        // This one is counted already.
        let others = self.hub.sessions().saturating_sub(1);
        let lease = self.hold(stream, others).await?;
        Ok((publisher, lease))
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Takes `stream`'s live session for this node: refused while another
    /// node holds it, or when this node runs `--max-streams` sessions
    /// (`sessions`, this one not counted).
    async fn hold(&self, stream: &LiveStream, sessions: usize) -> Result<SessionLease> {
        let max = self.node.max_streams;
        if max > 0 && sessions >= max as usize {
            return Err(Error::NodeFull {
                node_id: self.node.id.clone(),
                max_streams: max,
            });
        }
        match self
            .registry
            .acquire_lease(&stream.stream_ref, &self.node.id, LEASE_TTL)
            .await?
        {
            LeaseGrant::Granted(lease) => {
                Ok(SessionLease::start(Arc::clone(&self.registry), lease))
            }
            LeaseGrant::HeldBy { node_id } => Err(Error::PublisherActive {
                stream_id: stream.stream_ref.stream_id.clone(),
                node_id: Some(node_id),
            }),
        }
    }
}
