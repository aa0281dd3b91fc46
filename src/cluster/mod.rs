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
//!
//! Every write of a session carries its lease's [`Fence`] (node, epoch),
//! and the registry refuses those of a session that was taken over. When
//! this node takes a lease another node let lapse, it hands that session
//! on as a [`Takeover`], so that what it left unfinished (its recording)
//! is finished here.
//!
//! After the registry was out of reach, every node's lease looks lapsed
//! to the database, though their holders are alive and about to renew.
//! So a node takes another's lapsed lease only once it has reached the
//! registry without a failure for [`LEASE_TTL`] ([`Reachability`]): by
//! then a live holder has renewed, and a PostgreSQL outage moves no
//! stream.

pub mod directory;
pub mod heartbeat;
pub mod lease;
pub mod placement;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::headroom::Headroom;
use crate::ids::StreamRef;
use crate::registry::cluster::{Fence, LeaseGrant};
use crate::registry::{Quota, Registry};
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

/// A session of another node whose lease lapsed and was taken by this
/// node: what it left unfinished is this node's to finish.
#[derive(Debug, Clone)]
pub struct Takeover {
    pub stream: StreamRef,
    /// The session taken over.
    pub from: Fence,
    /// This node's session that took it.
    pub to: Fence,
}

/// Since when this node has reached the registry without a failure.
#[derive(Debug)]
pub struct Reachability(Mutex<Option<Instant>>);

impl Reachability {
    fn new() -> Self {
        Self(Mutex::new(None))
    }

    /// Notes how a call to the registry went.
    pub fn note<T>(&self, result: &Result<T>) {
        let mut since = self.0.lock().expect("reachability lock");
        match result {
            Err(Error::StorageUnavailable(_)) => *since = None,
            _ => {
                since.get_or_insert_with(Instant::now);
            }
        }
    }

    /// Whether the registry has answered without a failure for `period`.
    pub fn steady_for(&self, period: Duration) -> bool {
        self.0
            .lock()
            .expect("reachability lock")
            .is_some_and(|since| since.elapsed() >= period)
    }
}

/// Leases of this node's sessions.
#[derive(Clone)]
pub struct Cluster {
    registry: Arc<Registry>,
    node: Arc<Node>,
    /// This node's streams (to count its sessions).
    hub: Arc<StreamHub>,
    reachability: Arc<Reachability>,
    takeovers: mpsc::UnboundedSender<Takeover>,
    placement: placement::Placement,
    directory: Arc<directory::Directory>,
    /// Whether this node keeps up with what it has.
    headroom: Arc<Headroom>,
}

impl Cluster {
    /// This node's cluster side, and the sessions it will take over from
    /// other nodes (for whoever finishes their work).
    pub fn new(
        registry: Arc<Registry>,
        node: Node,
        hub: Arc<StreamHub>,
        headroom: Arc<Headroom>,
    ) -> (Self, mpsc::UnboundedReceiver<Takeover>) {
        let (takeovers, taken) = mpsc::unbounded_channel();
        let directory = Arc::new(directory::Directory::new(Arc::clone(&registry)));
        let cluster = Self {
            placement: placement::Placement::new(
                Arc::clone(&directory),
                registry.is_shared(),
                &node.id,
            ),
            directory,
            registry,
            node: Arc::new(node),
            hub,
            reachability: Arc::new(Reachability::new()),
            takeovers,
            headroom,
        };
        (cluster, taken)
    }

    /// Where pulled streams go.
    pub fn placement(&self) -> &placement::Placement {
        &self.placement
    }

    /// The nodes as their heartbeats say.
    pub fn directory(&self) -> &Arc<directory::Directory> {
        &self.directory
    }

    /// How well this node reaches the registry.
    pub fn reachability(&self) -> &Arc<Reachability> {
        &self.reachability
    }

    /// Takes `stream` for a session of `kind` on this node: its publisher
    /// slot here, then its lease. Refused while it has a publisher here or
    /// on another node, or this node is full.
    pub async fn claim(
        &self,
        stream: &Arc<LiveStream>,
        kind: PublisherKind,
        key: Option<&str>,
    ) -> Result<(PublisherGuard, SessionLease)> {
        let publisher = stream.claim_publisher(kind, key)?;
        // This one is counted already.
        let others = self.hub.sessions().saturating_sub(1);
        let lease = self.hold(stream, others).await?;
        Ok((publisher, lease))
    }

    /// Whether this node keeps up with its sessions.
    pub fn headroom(&self) -> &Arc<Headroom> {
        &self.headroom
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Refuses a session past its organization's quota of live sessions
    /// (counted over every node by their leases). Two sessions starting
    /// at once on two nodes may both pass the last place; the quota is
    /// then over by one until one ends.
    async fn check_live_sessions_quota(&self, stream: &LiveStream) -> Result<()> {
        let org_id = &stream.stream_ref.organization_id;
        let Some(org) = self.registry.organization(org_id).await? else {
            return Ok(());
        };
        if org.quotas.live_sessions == 0 {
            return Ok(());
        }
        // Its own lease (a new session of the same stream) is not another.
        let live = self
            .registry
            .live_sessions(org_id, &stream.stream_ref.stream_id)
            .await?;
        org.check_quota(Quota::LiveSessions, live)
    }

    /// Takes `stream`'s live session for this node: refused while another
    /// node holds it, when this node runs `--max-streams` sessions
    /// (`sessions`, this one not counted), or is overloaded.
    async fn hold(&self, stream: &LiveStream, sessions: usize) -> Result<SessionLease> {
        let max = self.node.max_streams;
        if max > 0 && sessions >= max as usize {
            refused("node_full");
            return Err(Error::NodeFull {
                node_id: self.node.id.clone(),
                max_streams: max,
            });
        }
        if let Err(reason) = self.headroom.admit() {
            refused("overloaded");
            return Err(Error::NodeOverloaded {
                node_id: self.node.id.clone(),
                reason,
            });
        }
        self.check_live_sessions_quota(stream).await?;
        let take_lapsed = self.reachability.steady_for(LEASE_TTL);
        let grant = self
            .registry
            .acquire_lease(&stream.stream_ref, &self.node.id, LEASE_TTL, take_lapsed)
            .await;
        self.reachability.note(&grant);
        match grant? {
            LeaseGrant::Granted { lease, taken_from } => {
                if let Some(from) = taken_from {
                    tracing::warn!(stream = %stream.stream_ref, from_node = %from.node_id, from_epoch = from.epoch, epoch = lease.epoch, "took over a session whose node stopped renewing its lease");
                    // Nobody finishes it when no one listens (no object
                    // store): its recording stays as its node left it.
                    let _ = self.takeovers.send(Takeover {
                        stream: stream.stream_ref.clone(),
                        from,
                        to: lease.fence(),
                    });
                }
                Ok(SessionLease::start(
                    Arc::clone(&self.registry),
                    Arc::clone(&self.reachability),
                    lease,
                ))
            }
            LeaseGrant::HeldBy { node_id } => Err(Error::PublisherActive {
                stream_id: stream.stream_ref.stream_id.clone(),
                node_id: Some(node_id),
            }),
        }
    }
}

fn refused(reason: &'static str) {
    crate::metrics::get()
        .sessions_refused
        .get_or_create(&crate::metrics::ReasonLabel { reason })
        .inc();
}
