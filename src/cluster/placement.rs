//! Which node runs a pulled stream (and the demo's test pattern): every
//! node runs the pull task of every pulled stream, and while nobody holds
//! its lease each asks [`Placement::here`] before taking it.
//!
//! The choice ([`choose`]) is made the same way on every node, from the
//! nodes' heartbeats: among the nodes heard of lately, not draining and
//! below `--max-streams`, those running the fewest live sessions (within
//! [`LOAD_SLACK`] of the least loaded) are candidates, and the stream goes
//! to the candidate ranked first for it by rendezvous hashing. Heartbeats
//! come every few seconds, so many pulls created at once would all see
//! the same least-loaded node; hashing spreads them over the nodes that
//! are about as loaded.
//!
//! The heartbeats may be stale, or the chosen node may not want the
//! stream (it is failing to start it, or it just died): a node that has
//! seen the stream unheld for [`PATIENCE`] takes it anyway.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::directory::Directory;
use super::heartbeat::HEARTBEAT_EVERY;
use crate::error::Result;
use crate::ids::StreamRef;
use crate::registry::cluster::NodeRecord;

/// Nodes within this many live sessions of the least loaded one are
/// candidates alike.
pub const LOAD_SLACK: u32 = 2;
/// How long an unheld stream waits for the node chosen for it before any
/// node takes it.
pub const PATIENCE: Duration = Duration::from_secs(6);
/// A node not heard of for this long is not chosen (it may have died: its
/// leases lapse after 8 s).
const FRESH: Duration = Duration::from_secs(2 * HEARTBEAT_EVERY.as_secs());

/// The node chosen for `stream` among `nodes`, if any may take it.
pub fn choose<'a>(nodes: &'a [NodeRecord], stream: &StreamRef) -> Option<&'a NodeRecord> {
    let candidates: Vec<&NodeRecord> = nodes
        .iter()
        .filter(|n| n.heartbeat_age_ms < FRESH.as_millis() as i64 && !n.draining)
        .filter(|n| n.max_streams == 0 || n.live_streams < n.max_streams)
        .collect();
    let least = candidates.iter().map(|n| n.live_streams).min()?;
    candidates
        .into_iter()
        .filter(|n| n.live_streams <= least + LOAD_SLACK)
        .max_by_key(|n| (rank(stream, &n.id), std::cmp::Reverse(n.id.clone())))
}

/// Where `node` ranks for `stream` (rendezvous hashing): the same on every
/// node and every build.
fn rank(stream: &StreamRef, node: &str) -> u64 {
    let digest = Sha256::new()
        .chain_update(stream.organization_id.as_bytes())
        .chain_update([0])
        .chain_update(stream.stream_id.as_bytes())
        .chain_update([0])
        .chain_update(node.as_bytes())
        .finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// This node's view of where pulls go.
#[derive(Clone)]
pub struct Placement {
    directory: Arc<Directory>,
    /// Whether there are other nodes at all (a shared registry).
    shared: bool,
    node_id: Arc<str>,
}

impl Placement {
    pub fn new(directory: Arc<Directory>, shared: bool, node_id: &str) -> Self {
        Self {
            directory,
            shared,
            node_id: node_id.into(),
        }
    }

    /// Whether this node should take `stream`, unheld since
    /// `unheld_since` as this node saw it.
    pub async fn here(&self, stream: &StreamRef, unheld_since: Instant) -> Result<bool> {
        if !self.shared || unheld_since.elapsed() >= PATIENCE {
            return Ok(true);
        }
        let nodes = self.directory.nodes().await?;
        Ok(match choose(&nodes, stream) {
            Some(chosen) => *chosen.id == *self.node_id,
            // No node may take it by the heartbeats: let the lease decide.
            None => true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, live: u32, max: u32, age_ms: i64, draining: bool) -> NodeRecord {
        NodeRecord {
            id: id.into(),
            advertise_url: String::new(),
            max_streams: max,
            live_streams: live,
            cpu_percent: 0.0,
            draining,
            version: String::new(),
            started_ms: 0,
            heartbeat_age_ms: age_ms,
        }
    }

    #[test]
    fn the_least_loaded_live_node_gets_the_stream() {
        let nodes = [
            node("a", 30, 0, 100, false),
            node("b", 3, 0, 100, false),
            node("c", 0, 0, 9_000, false),
            node("d", 0, 0, 100, true),
            node("e", 1, 1, 100, false),
        ];
        for i in 0..20 {
            let stream = StreamRef::new("org", format!("cam{i}"));
            assert_eq!(choose(&nodes, &stream).unwrap().id, "b", "cam{i}");
        }
        assert!(choose(&nodes[2..], &StreamRef::new("org", "cam")).is_none());
    }

    #[test]
    fn streams_spread_over_nodes_about_as_loaded() {
        let nodes = [
            node("a", 10, 0, 100, false),
            node("b", 11, 0, 100, false),
            node("c", 12, 0, 100, false),
            node("d", 20, 0, 100, false),
        ];
        let mut counts = std::collections::HashMap::new();
        for i in 0..300 {
            let stream = StreamRef::new("org", format!("cam{i}"));
            let chosen = choose(&nodes, &stream).unwrap();
            // The same on every call (every node decides alike).
            assert_eq!(choose(&nodes, &stream).unwrap().id, chosen.id);
            *counts.entry(chosen.id.clone()).or_insert(0) += 1;
        }
        assert_eq!(counts.get("d"), None);
        for id in ["a", "b", "c"] {
            let n = counts[id];
            assert!((70..=130).contains(&n), "{id}: {n} of 300");
        }
    }
}
