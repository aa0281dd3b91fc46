//! What the registry keeps for a cluster of nodes on one database: each
//! node's registration and heartbeat ([`NodeRecord`]), and the lease by
//! which exactly one node holds a stream's live session ([`Lease`]).
//!
//! A lease lapses unless its holder renews it; whoever takes a lapsed
//! lease gets the next epoch. The holder's node and epoch are the
//! session's [`Fence`], the fencing token every write of the session
//! carries: the PostgreSQL backend refuses a write whose session was taken
//! over (the stream's lease moved to another node at a later epoch, or the
//! recording was finished by another node) with `Error::Fenced`. The
//! PostgreSQL backend keeps leases in the database, timed by the
//! database's clock; the embedded backend (one node) keeps them in memory
//! ([`LocalLeases`]), as its sessions end with the process anyway, and
//! has no other writer to fence.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::ids::StreamRef;

/// A node as it last reported itself.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRecord {
    pub id: String,
    /// Where other nodes reach its gRPC/HTTP listener.
    pub advertise_url: String,
    /// Most live sessions it takes (0: no limit).
    pub max_streams: u32,
    pub live_streams: u32,
    /// Its CPU use, percent of all its cores.
    pub cpu_percent: f32,
    /// It is shutting down: no new sessions are placed on it.
    pub draining: bool,
    pub version: String,
    pub started_ms: i64,
    /// How long ago its last heartbeat was (by the registry's clock; 0 when
    /// reporting).
    pub heartbeat_age_ms: i64,
}

/// A node's hold on a stream's live session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub stream: StreamRef,
    pub node_id: String,
    /// Goes up with every new holder.
    pub epoch: i64,
}

impl Lease {
    /// The fencing token of the session holding this lease.
    pub fn fence(&self) -> Fence {
        Fence {
            node_id: self.node_id.clone(),
            epoch: self.epoch,
        }
    }
}

/// Who writes for a session: the node holding its lease and the lease's
/// epoch. Empty for records from before leases.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Fence {
    pub node_id: String,
    pub epoch: i64,
}

impl Fence {
    /// Whether the writer is node `node_id`, or unknown (a record from
    /// before fences: a single node's).
    pub fn is_of(&self, node_id: &str) -> bool {
        self.node_id.is_empty() || self.node_id == node_id
    }
}

/// The answer to a request for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    Granted {
        lease: Lease,
        /// The session of another node whose lease lapsed (it was never
        /// given up) and is taken over by this grant: what it left
        /// unfinished is the new holder's to finish.
        taken_from: Option<Fence>,
    },
    /// Another node holds the session.
    HeldBy { node_id: String },
}

/// Who holds a stream's session, if anyone does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub node_id: String,
    pub epoch: i64,
}

/// Leases of one node with no database to share: in memory, with the
/// same rules as the database's (used by tests with several node ids).
#[derive(Default)]
pub struct LocalLeases {
    held: Mutex<HashMap<StreamRef, Held>>,
}

struct Held {
    node_id: String,
    epoch: i64,
    expires: Instant,
    released: bool,
}

impl LocalLeases {
    pub fn acquire(
        &self,
        stream: &StreamRef,
        node_id: &str,
        ttl: Duration,
        take_lapsed: bool,
    ) -> LeaseGrant {
        let mut held = self.held.lock().expect("leases lock");
        let now = Instant::now();
        let (epoch, taken_from) = match held.get(stream) {
            // A node takes its own lease back for a new session (the last
            // one may not have released it yet: one session per stream
            // and node is the node's own rule).
            Some(h) if h.node_id == node_id => (h.epoch + 1, None),
            Some(h) if h.expires > now || !(h.released || take_lapsed) => {
                return LeaseGrant::HeldBy {
                    node_id: h.node_id.clone(),
                }
            }
            Some(h) => (
                h.epoch + 1,
                (!h.released).then(|| Fence {
                    node_id: h.node_id.clone(),
                    epoch: h.epoch,
                }),
            ),
            None => (1, None),
        };
        held.insert(
            stream.clone(),
            Held {
                node_id: node_id.to_string(),
                epoch,
                expires: now + ttl,
                released: false,
            },
        );
        LeaseGrant::Granted {
            lease: Lease {
                stream: stream.clone(),
                node_id: node_id.to_string(),
                epoch,
            },
            taken_from,
        }
    }

    /// Whether `lease` is the one held (and not given up).
    fn is_held<'a>(held: &'a mut HashMap<StreamRef, Held>, lease: &Lease) -> Option<&'a mut Held> {
        held.get_mut(&lease.stream)
            .filter(|h| h.node_id == lease.node_id && h.epoch == lease.epoch && !h.released)
    }

    pub fn renew(&self, lease: &Lease, ttl: Duration) -> bool {
        let mut held = self.held.lock().expect("leases lock");
        match Self::is_held(&mut held, lease) {
            Some(h) => {
                h.expires = Instant::now() + ttl;
                true
            }
            None => false,
        }
    }

    pub fn release(&self, lease: &Lease) {
        let mut held = self.held.lock().expect("leases lock");
        if let Some(h) = Self::is_held(&mut held, lease) {
            h.expires = Instant::now();
            h.released = true;
        }
    }

    /// Sessions of `org_id`'s streams held now, by any node, but
    /// `except_stream`'s.
    pub fn held_by_organization(&self, org_id: &str, except_stream: &str) -> u64 {
        let held = self.held.lock().expect("leases lock");
        let now = Instant::now();
        held.iter()
            .filter(|(stream, h)| {
                stream.organization_id == org_id
                    && stream.stream_id != except_stream
                    && h.expires > now
            })
            .count() as u64
    }

    pub fn holder(&self, stream: &StreamRef) -> Option<LeaseHolder> {
        let held = self.held.lock().expect("leases lock");
        held.get(stream)
            .filter(|h| h.expires > Instant::now())
            .map(|h| LeaseHolder {
                node_id: h.node_id.clone(),
                epoch: h.epoch,
            })
    }
}
