//! The gRPC health service follows the registry: NOT_SERVING while a write
//! cannot be committed (a full or failing disk, an unreachable database),
//! SERVING again once one can. A small write is tried every [`PROBE_EVERY`]; a failed one also
//! makes the registry reopen its database at the next try.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic_health::server::HealthReporter;
use tonic_health::ServingStatus;

use crate::registry::Registry;

/// How often the registry is probed.
pub const PROBE_EVERY: Duration = Duration::from_secs(2);

/// Services whose health follows the registry.
const SERVICES: [&str; 3] = [
    "",
    "liveproc.v1.LiveProcessing",
    "liveproc.v1.Organizations",
];

/// Probes until `stop` is cancelled.
pub async fn follow_registry(
    registry: Arc<Registry>,
    reporter: HealthReporter,
    stop: CancellationToken,
) {
    let mut serving = true;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PROBE_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let probe = registry.probe_write().await;
        let ok = probe.is_ok();
        if ok == serving {
            continue;
        }
        serving = ok;
        let status = if ok {
            tracing::info!("registry writable again: serving");
            ServingStatus::Serving
        } else {
            let reason = probe.err().map(|e| e.to_string()).unwrap_or_default();
            tracing::error!(%reason, "registry cannot write: not serving");
            ServingStatus::NotServing
        };
        for service in SERVICES {
            reporter.set_service_status(service, status).await;
        }
    }
}

/// The health service name of object storage: NOT_SERVING while uploads
/// fail (recordings wait in the local spool), SERVING otherwise. The
/// server's own services stay SERVING meanwhile: nothing is lost.
pub const OBJECT_STORAGE: &str = "liveproc.ObjectStorage";

/// Follows the uploader's health until it stops.
pub async fn follow_uploads(mut healthy: watch::Receiver<bool>, reporter: HealthReporter) {
    reporter
        .set_service_status(OBJECT_STORAGE, ServingStatus::Serving)
        .await;
    while healthy.changed().await.is_ok() {
        let status = if *healthy.borrow_and_update() {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        reporter.set_service_status(OBJECT_STORAGE, status).await;
    }
}
