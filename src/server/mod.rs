//! A running liveproc server: opens the registry, restores the streams,
//! starts the SRT listener and the gRPC services (with reflection and
//! health), and shuts everything down in order when told to: stop taking
//! calls and publishers, end every session cleanly (pipelines drain), then
//! return.

mod admin_key;
mod demo;
mod health;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::live_processing::LiveProcessingService;
use crate::api::organizations::OrganizationsService;
use crate::api::ApiState;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::features::{FeatureEngine, ReplayBudget};
use crate::ingest::pull_policy::PullPolicy;
use crate::ingest::{srt, Ingest};
use crate::proto::v1::live_processing_server::LiveProcessingServer;
use crate::proto::v1::organizations_server::OrganizationsServer;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::registry::Registry;
use crate::store::DataDir;
use crate::streams::StreamHub;

/// How long open gRPC calls get to finish at shutdown.
const GRPC_DRAIN_GRACE: Duration = Duration::from_secs(5);
/// How long sessions get to finish their output at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the server until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::pipeline::init()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let data = DataDir::new(&config.data_dir);
    let registry = Arc::new(
        Registry::open(&data.registry_file())
            .context("opening the registry (is another liveproc using this data dir?)")?,
    );
    let admin_key_hash = admin_key::resolve(&registry, &config, &data)?;

    let hub = Arc::new(StreamHub::default());
    let ingest = Ingest {
        registry: Arc::clone(&registry),
        hub: Arc::clone(&hub),
        sessions: TaskTracker::new(),
        engine: Arc::new(FeatureEngine::new(
            data.clone(),
            Arc::clone(&registry),
            config.min_free_disk_mb * 1024 * 1024,
            ReplayBudget {
                bytes: (config.replay_memory_mb * 1024 * 1024) as usize,
                memory_horizon: Duration::from_secs(config.replay_memory_seconds),
            },
        )),
        pull_policy: Arc::new(
            PullPolicy::new(
                &config.data_dir,
                &config.pull_allow_file_dirs,
                &config.pull_allow,
            )
            .with_http(config.pull_allow_http),
        ),
    };
    ingest.engine.clear_replay_spill();
    let recordings = Arc::clone(ingest.engine.recordings());
    let recovered = tokio::task::spawn_blocking(move || {
        crate::features::recording::recovery::recover(&recordings)
    })
    .await?;
    if recovered > 0 {
        tracing::warn!(recovered, "recordings recovered after an unclean stop");
    }
    let restored = registry.all_streams()?;
    for record in &restored {
        ingest.add_stream(record);
    }
    tracing::info!(streams = restored.len(), "registry loaded");

    let (srt_addr, srt_loop) = srt::bind(
        config.srt_listen,
        config.srt_receive_threads,
        ingest.clone(),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding SRT listener on {}", config.srt_listen))?;
    let srt_task = tokio::spawn(srt_loop);

    let grpc_listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding gRPC listener on {}", config.listen))?;
    let grpc_addr = grpc_listener.local_addr()?;

    let state = ApiState {
        registry: Arc::clone(&registry),
        hub: Arc::clone(&hub),
        auth: Authenticator::new(Arc::clone(&registry), admin_key_hash),
        ingest: ingest.clone(),
        features: Arc::clone(&ingest.engine),
        srt_public_addr: config
            .srt_public_addr
            .clone()
            .unwrap_or_else(|| public_addr(srt_addr)),
    };

    if config.demo {
        demo::ensure(&data, &state, grpc_addr).await?;
    }

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<OrganizationsServer<OrganizationsService>>()
        .await;
    health_reporter
        .set_serving::<LiveProcessingServer<LiveProcessingService>>()
        .await;
    tokio::spawn(health::follow_registry(
        Arc::clone(&registry),
        health_reporter.clone(),
        shutdown.clone(),
    ));
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    println!("liveproc ready: grpc={grpc_addr} srt={srt_addr}");
    tracing::info!(%grpc_addr, %srt_addr, data_dir = %config.data_dir.display(), "liveproc ready");

    // Shutdown order: stop taking publishers and end every session (so
    // outputs are finalized and watchers see ENDED), then end the watchers,
    // then let the gRPC server finish.
    let grpc_stop = CancellationToken::new();
    let stopper = {
        let (hub, ingest, grpc_stop) = (Arc::clone(&hub), ingest.clone(), grpc_stop.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("stopping: ending sessions");
            hub.stop_work();
            let _ = srt_task.await;
            ingest.sessions.close();
            if tokio::time::timeout(SHUTDOWN_GRACE, ingest.sessions.wait())
                .await
                .is_err()
            {
                tracing::warn!("some sessions did not end within {SHUTDOWN_GRACE:?}");
            }
            ingest.engine.drain(SHUTDOWN_GRACE).await;
            hub.end_watchers();
            grpc_stop.cancel();
        })
    };
    let forced_stop = grpc_stop.clone();
    let serve = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(OrganizationsServer::new(OrganizationsService::new(
            state.clone(),
        )))
        .add_service(LiveProcessingServer::new(LiveProcessingService::new(state)))
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc_listener), async move {
            grpc_stop.cancelled().await
        });
    // A client that stops reading a stream would hold a graceful stop
    // forever (HTTP/2 flow control): past the grace, close regardless.
    tokio::select! {
        served = serve => served?,
        _ = async {
            forced_stop.cancelled().await;
            tokio::time::sleep(GRPC_DRAIN_GRACE).await;
        } => tracing::warn!("closing gRPC connections that did not finish within {GRPC_DRAIN_GRACE:?}"),
    }
    stopper.await?;
    tracing::info!("liveproc stopped");
    Ok(())
}

/// Reflection over every service the server offers, so that grpcurl and
/// other tools need no proto files.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET)
}

/// The address publishers should use for a bound listener: a wildcard bind
/// is shown as `localhost` (set `srt_public_addr` for real deployments).
fn public_addr(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("localhost:{}", bound.port())
    } else {
        bound.to_string()
    }
}
