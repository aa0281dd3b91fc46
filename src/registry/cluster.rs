//! What the registry keeps for a cluster of nodes on one database: each
//! node's registration and heartbeat ([`NodeRecord`]), and the lease by
//! which exactly one node holds a stream's live session ([`Lease`]).
//!
//! A lease lapses unless its holder renews it; whoever takes a lapsed
//! lease gets the next epoch, the fencing token that tells its writes from
//! those of an earlier holder. The PostgreSQL backend keeps leases in the
//! database, timed by the database's clock; the embedded backend (one
//! node) keeps them in memory ([`LocalLeases`]), as its sessions end with
//! the process anyway.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// The answer to a request for a lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    Granted(Lease),
    /// Another node holds the session.
    HeldBy {
        node_id: String,
    },
}

/// Who holds a stream's session, if anyone does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub node_id: String,
    pub epoch: i64,
}

/// Leases of one node with no database to share: in memory.
#[derive(Default)]
pub struct LocalLeases {
    held: Mutex<HashMap<StreamRef, (String, i64, Instant)>>,
}

impl LocalLeases {
    pub fn acquire(&self, stream: &StreamRef, node_id: &str, ttl: Duration) -> LeaseGrant {
        let mut held = self.held.lock().expect("leases lock");
        let now = Instant::now();
        let epoch = match held.get(stream) {
            // A node takes its own lease back for a new session (the last
            // one may not have released it yet: one session per stream
            // and node is the node's own rule).
            Some((holder, _, expires)) if *expires > now && holder != node_id => {
                return LeaseGrant::HeldBy {
                    node_id: holder.clone(),
                }
            }
            Some((_, epoch, _)) => epoch + 1,
            None => 1,
        };
        held.insert(stream.clone(), (node_id.to_string(), epoch, now + ttl));
        LeaseGrant::Granted(Lease {
            stream: stream.clone(),
            node_id: node_id.to_string(),
            epoch,
        })
    }

    pub fn renew(&self, lease: &Lease, ttl: Duration) -> bool {
        let mut held = self.held.lock().expect("leases lock");
        match held.get_mut(&lease.stream) {
            Some((holder, epoch, expires)) if *holder == lease.node_id && *epoch == lease.epoch => {
                *expires = Instant::now() + ttl;
                true
            }
            _ => false,
        }
    }

    pub fn release(&self, lease: &Lease) {
        let mut held = self.held.lock().expect("leases lock");
        if let Some((holder, epoch, expires)) = held.get_mut(&lease.stream) {
            if *holder == lease.node_id && *epoch == lease.epoch {
                *expires = Instant::now();
            }
        }
    }

    pub fn holder(&self, stream: &StreamRef) -> Option<LeaseHolder> {
        let held = self.held.lock().expect("leases lock");
        held.get(stream)
            .filter(|(_, _, expires)| *expires > Instant::now())
            .map(|(node_id, epoch, _)| LeaseHolder {
                node_id: node_id.clone(),
                epoch: *epoch,
            })
    }
}
