//! `liveproc.v1.Cluster`: the operator's view of the nodes on the shared
//! registry (admin key).

use tonic::{Request, Response, Status};

use super::Services;
use crate::cluster::heartbeat::LOST_AFTER;
use crate::proto::timestamp_from_millis;
use crate::proto::v1 as pb;
use crate::proto::v1::cluster_server::Cluster;
use crate::registry::cluster::NodeRecord;
use crate::registry::now_millis;

pub struct ClusterService {
    state: Services,
}

impl ClusterService {
    pub fn new(state: Services) -> Self {
        Self { state }
    }
}

/// A node as the API shows it: lost when its heartbeat is older than
/// [`LOST_AFTER`].
fn node(record: &NodeRecord) -> pb::Node {
    let state = if record.heartbeat_age_ms > LOST_AFTER.as_millis() as i64 {
        pb::NodeState::NodeLost
    } else if record.draining {
        pb::NodeState::NodeDraining
    } else {
        pb::NodeState::NodeUp
    };
    pb::Node {
        id: record.id.clone(),
        state: state as i32,
        advertise_url: record.advertise_url.clone(),
        live_streams: record.live_streams,
        max_streams: record.max_streams,
        cpu_percent: record.cpu_percent,
        version: record.version.clone(),
        start_time: Some(timestamp_from_millis(record.started_ms)),
        last_heartbeat_time: Some(timestamp_from_millis(
            now_millis() - record.heartbeat_age_ms,
        )),
    }
}

#[tonic::async_trait]
impl Cluster for ClusterService {
    async fn list_nodes(
        &self,
        request: Request<pb::ListNodesRequest>,
    ) -> Result<Response<pb::ListNodesResponse>, Status> {
        self.state.auth.require_admin(request.metadata()).await?;
        let nodes = self.state.registry.list_nodes().await?;
        Ok(Response::new(pb::ListNodesResponse {
            nodes: nodes.iter().map(node).collect(),
        }))
    }
}
