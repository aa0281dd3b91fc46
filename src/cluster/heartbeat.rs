//! The node's heartbeat: every [`HEARTBEAT_EVERY`] it writes what it is
//! (`NodeRecord`: its address, live sessions, CPU, limit, draining) to the
//! registry, where every node's `ListNodes` reads it. A node whose last
//! heartbeat is older than [`LOST_AFTER`] is taken for lost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{Node, Reachability};
use crate::registry::cluster::NodeRecord;
use crate::registry::{now_millis, Registry};
use crate::streams::StreamHub;

pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A node not heard of for this long is lost.
pub const LOST_AFTER: Duration = Duration::from_secs(10);

/// Writes the node's heartbeat until `stop`, then one last one saying it
/// is draining.
pub async fn run(
    registry: Arc<Registry>,
    node: Node,
    hub: Arc<StreamHub>,
    reachability: Arc<Reachability>,
    stop: CancellationToken,
) {
    let started_ms = now_millis();
    let mut cpu = CpuMeter::new();
    let mut failing = false;
    loop {
        let stopping = stop.is_cancelled();
        let record = NodeRecord {
            id: node.id.clone(),
            advertise_url: node.advertise_url.clone(),
            max_streams: node.max_streams,
            live_streams: hub.sessions() as u32,
            cpu_percent: cpu.percent(),
            draining: stopping,
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_ms,
            heartbeat_age_ms: 0,
        };
        let written = registry.heartbeat_node(&record).await;
        reachability.note(&written);
        match written {
            Ok(()) if failing => {
                failing = false;
                tracing::info!(node = %node.id, "node heartbeat works again");
            }
            Ok(()) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::error!(node = %node.id, error = %e, "cannot write the node's heartbeat");
            }
            Err(_) => {}
        }
        if stopping {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
            _ = stop.cancelled() => {}
        }
    }
}

/// This process's CPU use between two readings, percent of all cores.
struct CpuMeter {
    at: Instant,
    ticks: u64,
}

impl CpuMeter {
    fn new() -> Self {
        Self {
            at: Instant::now(),
            ticks: own_ticks().unwrap_or(0),
        }
    }

    fn percent(&mut self) -> f32 {
        let (now, ticks) = (Instant::now(), own_ticks().unwrap_or(self.ticks));
        let elapsed = now.duration_since(self.at).as_secs_f64();
        let used = ticks.saturating_sub(self.ticks) as f64 / ticks_per_second();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        (self.at, self.ticks) = (now, ticks);
        if elapsed <= 0.0 {
            return 0.0;
        }
        (100.0 * used / elapsed / cores) as f32
    }
}

/// utime + stime of this process, in clock ticks (`/proc/self/stat`).
fn own_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), from field 3.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}
