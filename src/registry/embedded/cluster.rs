//! Nodes and leases of the embedded registry: one node, so its own
//! registration and its leases are kept in memory
//! ([`crate::registry::cluster::LocalLeases`]).

use std::time::{Duration, Instant};

use super::EmbeddedRegistry;
use crate::error::Result;
use crate::ids::StreamRef;
use crate::registry::cluster::{Lease, LeaseGrant, LeaseHolder, NodeRecord};

impl EmbeddedRegistry {
    pub fn heartbeat_node(&self, node: &NodeRecord) -> Result<()> {
        *self.node.lock().expect("node lock") = Some((node.clone(), Instant::now()));
        Ok(())
    }

    pub fn list_nodes(&self) -> Result<Vec<NodeRecord>> {
        let node = self.node.lock().expect("node lock");
        Ok(node
            .iter()
            .map(|(node, at)| NodeRecord {
                heartbeat_age_ms: at.elapsed().as_millis() as i64,
                ..node.clone()
            })
            .collect())
    }

    pub fn acquire_lease(
        &self,
        stream: &StreamRef,
        node_id: &str,
        ttl: Duration,
        take_lapsed: bool,
    ) -> Result<LeaseGrant> {
        Ok(self.leases.acquire(stream, node_id, ttl, take_lapsed))
    }

    pub fn renew_lease(&self, lease: &Lease, ttl: Duration) -> Result<bool> {
        Ok(self.leases.renew(lease, ttl))
    }

    pub fn release_lease(&self, lease: &Lease) -> Result<()> {
        self.leases.release(lease);
        Ok(())
    }

    pub fn live_sessions(&self, org_id: &str, except_stream: &str) -> Result<u64> {
        Ok(self.leases.held_by_organization(org_id, except_stream))
    }

    pub fn lease_holder(&self, stream: &StreamRef) -> Result<Option<LeaseHolder>> {
        Ok(self.leases.holder(stream))
    }
}
