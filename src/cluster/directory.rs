//! The nodes of the cluster as their heartbeats last said, read from the
//! registry at most every [`READ_EVERY`] for everything on this node
//! that asks (placement of pulls, forwarding of live calls).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::Result;
use crate::registry::cluster::NodeRecord;
use crate::registry::Registry;

/// How long a reading of the nodes is used.
pub const READ_EVERY: Duration = Duration::from_secs(1);

/// Every node, as last read.
pub type Nodes = Arc<Vec<NodeRecord>>;

/// The nodes, read once for all callers.
pub struct Directory {
    registry: Arc<Registry>,
    last: Mutex<Option<(Instant, Nodes)>>,
}

impl Directory {
    pub fn new(registry: Arc<Registry>) -> Self {
        Self {
            registry,
            last: Mutex::new(None),
        }
    }

    /// Every node with its last heartbeat's age.
    pub async fn nodes(&self) -> Result<Nodes> {
        if let Some((at, nodes)) = self.last.lock().expect("directory lock").as_ref() {
            if at.elapsed() < READ_EVERY {
                return Ok(Arc::clone(nodes));
            }
        }
        let nodes: Nodes = Arc::new(self.registry.list_nodes().await?);
        *self.last.lock().expect("directory lock") = Some((Instant::now(), Arc::clone(&nodes)));
        Ok(nodes)
    }
}
