//! A running liveproc server: opens the registry, restores the streams,
//! starts the SRT listener and, on one address, the gRPC services (with
//! reflection, health and grpc-web) beside the HTTP routes ([`crate::http`]:
//! requests that are not for a gRPC service go there), and shuts everything
//! down in order when told to: stop taking calls and publishers, end every
//! session cleanly (pipelines drain), then return.

mod admin_key;
mod connections;
mod demo;
mod health;
mod metrics_endpoint;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::cluster::ClusterService;
use crate::api::live_processing::LiveProcessingService;
use crate::api::organizations::OrganizationsService;
use crate::api::webhooks::WebhooksService;
use crate::auth::Authenticator;
use crate::cluster::{Cluster, Node};
use crate::config::Config;
use crate::features::replay::spill_store::SpillStore;
use crate::features::{FeatureEngine, ReplayBudget};
use crate::headroom::{monitor, Headroom};
use crate::http::HttpState;
use crate::ingest::{rtmp, srt, Ingest};
use crate::objects::ObjectStorage;
use crate::proto::v1::cluster_server::ClusterServer;
use crate::proto::v1::live_processing_server::LiveProcessingServer;
use crate::proto::v1::organizations_server::OrganizationsServer;
use crate::proto::v1::webhooks_server::WebhooksServer;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::pull_policy::PullPolicy;
use crate::registry::{setting, Registry};
use crate::service::convert::IngestAddrs;
use crate::service::peers::Peers;
use crate::service::rescue::{self, Rescuer};
use crate::service::uploads::Uploader;
use crate::service::Services;
use crate::store::DataDir;
use crate::streams::StreamHub;
use crate::tls::Certificate;
use crate::url_signing::UrlSigner;
use crate::webhooks::delivery::{Delivery, MediaUrls};
use crate::webhooks::sink::EventSink;
use crate::webhooks::target::TargetPolicy;

/// How long open gRPC calls get to finish at shutdown.
const GRPC_DRAIN_GRACE: Duration = Duration::from_secs(5);
/// The key of signed URLs: from the registry when it is shared, so that a
/// URL signed by one node is valid on every node; else from its file in
/// the data dir.
async fn url_signer(registry: &Registry, data: &DataDir) -> anyhow::Result<UrlSigner> {
    if registry.is_shared() {
        let stored = registry
            .setting_or_insert(setting::URL_SIGNING_KEY, &UrlSigner::new_key_hex())
            .await?;
        return UrlSigner::from_hex(&stored);
    }
    UrlSigner::load_or_create(&data.url_signing_key_file())
}

/// How long queued webhook events get to reach the outbox at shutdown.
const EVENTS_FLUSH_GRACE: Duration = Duration::from_secs(2);
/// How long sessions get to finish their output at shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Runs the server until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    crate::pipeline::init()?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
    let data = DataDir::new(&config.data_dir);
    let registry = Arc::new(match &config.database_url {
        Some(url) => Registry::connect_postgres(url)
            .await
            .context("opening the PostgreSQL registry")?,
        None => Registry::open_embedded(&data.registry_file())
            .context("opening the registry (is another liveproc using this data dir?)")?,
    });
    tracing::info!(backend = registry.describe(), "registry open");
    let objects = match &config.object_store {
        Some(url) => {
            let objects = ObjectStorage::connect(url)
                .await
                .context("opening the object store (--object-store)")?;
            tracing::info!(
                store = objects.name(),
                "object storage checked: recordings, clips and spilled replay media go there"
            );
            Some(objects)
        }
        None => None,
    };
    let admin_key_hash = admin_key::resolve(&registry, &config, &data).await?;

    let hub = Arc::new(StreamHub::default());
    let headroom = Arc::new(Headroom::default());
    let events = EventSink::start(Arc::clone(&registry));
    let (cluster, takeovers) = Cluster::new(
        Arc::clone(&registry),
        Node {
            id: config.node_id.clone(),
            advertise_url: config.advertise_url.clone().unwrap_or_default(),
            max_streams: config.max_streams,
        },
        Arc::clone(&hub),
        Arc::clone(&headroom),
    );
    let ingest = Ingest {
        registry: Arc::clone(&registry),
        hub: Arc::clone(&hub),
        sessions: TaskTracker::new(),
        engine: Arc::new(
            FeatureEngine::new(
                data.clone(),
                Arc::clone(&registry),
                config.min_free_disk_mb * 1024 * 1024,
                ReplayBudget {
                    bytes: (config.replay_memory_mb * 1024 * 1024) as usize,
                    memory_horizon: Duration::from_secs(config.replay_memory_seconds),
                },
                match &objects {
                    Some(objects) => {
                        SpillStore::with_objects(data.clone(), objects.clone(), &config.node_id)
                    }
                    None => SpillStore::local(data.clone()),
                },
                Arc::clone(&events),
                objects.is_none(),
            )
            .with_storyboard(crate::features::storyboard::Layout {
                interval: config.storyboard_interval,
                ..crate::features::storyboard::Layout::DEFAULT
            }),
        ),
        pull_policy: Arc::new(
            PullPolicy::new(
                &config.data_dir,
                &config.pull_allow_file_dirs,
                &config.pull_allow,
            )
            .with_http(config.pull_allow_http),
        ),
        cluster,
    };
    ingest.engine.clear_replay_spill();
    if let Some(objects) = &objects {
        let lost = rescue::recover_lost(
            &registry,
            objects,
            ingest.engine.recordings(),
            &config.node_id,
        )
        .await?;
        if lost > 0 {
            tracing::warn!(
                lost,
                "recordings of a lost node recovered from object storage"
            );
        }
    }
    let recovered =
        crate::features::recording::recovery::recover(ingest.engine.recordings(), &config.node_id)
            .await;
    if recovered > 0 {
        tracing::warn!(recovered, "recordings recovered after an unclean stop");
    }
    // Listening before reading every stream: no change falls in between.
    let stream_changes = registry
        .stream_changes()
        .await
        .context("listening for stream changes")?;
    let restored = registry.all_streams().await?;
    for record in &restored {
        ingest.add_stream(record);
    }
    if let Some(changes) = stream_changes {
        tokio::spawn(crate::ingest::follow::run(
            ingest.clone(),
            changes,
            shutdown.clone(),
        ));
    }
    tracing::info!(streams = restored.len(), "registry loaded");

    let shedding = Arc::clone(&hub);
    monitor::start(
        Arc::clone(&headroom),
        move |reason| shedding.shed_newest(reason).map(|s| s.to_string()),
        shutdown.clone(),
    )
    .context("starting the headroom monitor")?;
    crate::heap::start(shutdown.clone()).context("starting the heap trimmer")?;
    tokio::spawn(monitor::probe_runtime(
        Arc::clone(&headroom),
        shutdown.clone(),
    ));
    let (srt_addr, srt_loop) = srt::bind(
        config.srt_listen,
        config.srt_receive_threads,
        ingest.clone(),
        Arc::clone(&headroom),
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("binding SRT listener on {}", config.srt_listen))?;
    let srt_task = tokio::spawn(srt_loop);
    let certificate = match &config.tls {
        Some(files) => {
            let certificate = Certificate::load(files).context("loading the TLS certificate")?;
            tokio::spawn(certificate.clone().watch(shutdown.clone()));
            Some(certificate)
        }
        None => None,
    };
    let (rtmp_addr, rtmp_task) =
        rtmp_listener(config.rtmp_listen, None, &ingest, &shutdown).await?;
    let rtmps_tls = certificate
        .as_ref()
        .filter(|_| config.rtmps_listen.is_some())
        .map(|c| c.acceptor(&[]))
        .transpose()?;
    let (rtmps_addr, rtmps_task) =
        rtmp_listener(config.rtmps_listen, rtmps_tls, &ingest, &shutdown).await?;
    let rtmp_tasks: Vec<_> = rtmp_task.into_iter().chain(rtmps_task).collect();

    let grpc_listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding gRPC listener on {}", config.listen))?;
    let grpc_addr = grpc_listener.local_addr()?;

    let signer = Arc::new(
        url_signer(&registry, &data)
            .await
            .context("loading the URL-signing key")?,
    );
    // This node's address as a URL: https when it serves TLS.
    let own_url = format!(
        "{}://{}",
        if certificate.is_some() {
            "https"
        } else {
            "http"
        },
        public_addr(grpc_addr)
    );
    let state = Services {
        registry: Arc::clone(&registry),
        hub: Arc::clone(&hub),
        auth: Authenticator::new(Arc::clone(&registry), admin_key_hash),
        ingest: ingest.clone(),
        features: Arc::clone(&ingest.engine),
        ingest_addrs: IngestAddrs {
            srt: config
                .srt_public_addr
                .clone()
                .unwrap_or_else(|| public_addr(srt_addr)),
            rtmp: rtmp_addr.map(|addr| {
                config
                    .rtmp_public_addr
                    .clone()
                    .unwrap_or_else(|| public_addr(addr))
            }),
            rtmps: rtmps_addr.map(|addr| {
                config
                    .rtmps_public_addr
                    .clone()
                    .unwrap_or_else(|| public_addr(addr))
            }),
        },
        signer,
        objects: objects.clone(),
        peers: Arc::new(Peers::new(
            Arc::clone(&registry),
            Arc::clone(ingest.cluster.directory()),
            config.node_id.clone(),
            crate::tls::peer_client_config(config.tls_peer_ca.as_deref())
                .context("loading --tls-peer-ca")?,
        )),
        http_public_url: config
            .http_public_url
            .clone()
            .unwrap_or_else(|| own_url.clone()),
        events: Arc::clone(&events),
        webhook_policy: TargetPolicy::new(&config.data_dir, &config.webhook_allow),
    };
    let webhooks_stop = CancellationToken::new();
    tokio::spawn(
        Delivery::new(
            Arc::clone(&registry),
            state.webhook_policy.clone(),
            MediaUrls {
                signer: Arc::clone(&state.signer),
                public_url: state.http_public_url.clone(),
            },
            config.webhooks.clone(),
            Arc::clone(&events.queued),
        )
        .run(webhooks_stop.clone()),
    );
    tokio::spawn(crate::service::stream_notices::run(
        Arc::clone(&hub),
        Arc::clone(&registry),
        Arc::clone(&events),
        config.node_id.clone(),
        webhooks_stop.clone(),
    ));

    if let Some(retention) = config.audit_retention {
        tokio::spawn(crate::service::audit::prune(
            Arc::clone(&registry),
            retention,
            webhooks_stop.clone(),
        ));
    }

    tokio::spawn(crate::service::quotas::run(
        Arc::clone(&registry),
        Arc::clone(state.features.usage()),
        webhooks_stop.clone(),
    ));

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
    health_reporter
        .set_serving::<ClusterServer<ClusterService>>()
        .await;
    health_reporter
        .set_serving::<WebhooksServer<WebhooksService>>()
        .await;
    tokio::spawn(health::follow_registry(
        Arc::clone(&registry),
        health_reporter.clone(),
        shutdown.clone(),
    ));
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let http = crate::http::router(HttpState {
        services: state.clone(),
        operator_contact: config.operator_contact.as_str().into(),
    });

    let uploader = objects.as_ref().map(|objects| {
        let uploader = Uploader::new(
            Arc::clone(&registry),
            objects.clone(),
            Arc::clone(ingest.engine.recordings()),
        );
        tokio::spawn(health::follow_uploads(
            uploader.health(),
            health_reporter.clone(),
        ));
        uploader
    });
    let upload_stop = CancellationToken::new();
    let upload_task = uploader
        .clone()
        .map(|uploader| tokio::spawn(uploader.run(upload_stop.clone())));
    if let Some(objects) = &objects {
        let rescuer = Rescuer {
            registry: Arc::clone(&registry),
            objects: objects.clone(),
            node_id: config.node_id.clone(),
            reachability: Arc::clone(ingest.cluster.reachability()),
        };
        tokio::spawn(rescuer.run(takeovers, upload_stop.clone()));
    }

    let heartbeat_stop = CancellationToken::new();
    let heartbeat = tokio::spawn(crate::cluster::heartbeat::run(
        Arc::clone(&registry),
        Node {
            advertise_url: config.advertise_url.clone().unwrap_or(own_url),
            ..ingest.cluster.node().clone()
        },
        Arc::clone(&hub),
        Arc::clone(ingest.cluster.reachability()),
        heartbeat_stop.clone(),
    ));

    let metrics_addr = match config.metrics_listen {
        Some(addr) => Some(
            metrics_endpoint::serve(addr, Arc::clone(&hub), webhooks_stop.clone())
                .await
                .with_context(|| format!("binding the metrics listener on {addr}"))?,
        ),
        None => None,
    };
    let metrics_field = metrics_addr.map_or(String::new(), |a| format!(" metrics={a}"));
    let rtmp_field = rtmp_addr.map_or(String::new(), |a| format!(" rtmp={a}"));
    let rtmps_field = rtmps_addr.map_or(String::new(), |a| format!(" rtmps={a}"));
    let tls_field = if certificate.is_some() { " tls=on" } else { "" };
    println!(
        "liveproc ready: grpc={grpc_addr} srt={srt_addr}{rtmp_field}{rtmps_field}{metrics_field}{tls_field}"
    );
    tracing::info!(%grpc_addr, %srt_addr, data_dir = %config.data_dir.display(), "liveproc ready");

    // Shutdown order: stop taking publishers and end every session (so
    // outputs are finalized and watchers see ENDED), then end the watchers,
    // then let the gRPC server finish.
    let grpc_stop = CancellationToken::new();
    let stopper = {
        let (hub, ingest, grpc_stop) = (Arc::clone(&hub), ingest.clone(), grpc_stop.clone());
        let (events, webhooks_stop) = (Arc::clone(&events), webhooks_stop.clone());
        tokio::spawn(async move {
            shutdown.cancelled().await;
            tracing::info!("stopping: ending sessions");
            // The other nodes see this one draining.
            heartbeat_stop.cancel();
            let _ = heartbeat.await;
            hub.stop_work();
            let _ = srt_task.await;
            for task in rtmp_tasks {
                let _ = task.await;
            }
            ingest.sessions.close();
            if tokio::time::timeout(SHUTDOWN_GRACE, ingest.sessions.wait())
                .await
                .is_err()
            {
                tracing::warn!("some sessions did not end within {SHUTDOWN_GRACE:?}");
            }
            ingest.engine.drain(SHUTDOWN_GRACE).await;
            // The last fragments of the files just closed go up before the
            // process ends.
            upload_stop.cancel();
            if let Some(task) = upload_task {
                if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                    tracing::warn!("uploads did not finish within {SHUTDOWN_GRACE:?}; the next start goes on with them");
                }
            }
            // The sessions' last events (stream.ended) reach the outbox;
            // delivery goes on after the next start.
            events.flush(EVENTS_FLUSH_GRACE).await;
            webhooks_stop.cancel();
            hub.end_watchers();
            grpc_stop.cancel();
        })
    };
    // gRPC (and grpc-web) requests to the services, everything else to the
    // HTTP routes; HTTP/1.1 too, for browsers and grpc-web.
    let grpc = tonic::service::Routes::new(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(OrganizationsServer::new(OrganizationsService::new(
            state.clone(),
        )))
        .add_service(ClusterServer::new(ClusterService::new(state.clone())))
        .add_service(WebhooksServer::new(WebhooksService::new(state.clone())))
        .add_service(LiveProcessingServer::new(LiveProcessingService::new(state)))
        .into_axum_router()
        .layer(axum::middleware::from_fn(
            crate::metrics::requests::count_grpc,
        ))
        .layer(tonic_web::GrpcWebLayer::new());
    let by_content_type = move |request: axum::extract::Request| {
        let to = if is_grpc(&request) {
            grpc.clone()
        } else {
            http.clone()
        };
        async move {
            use tower::ServiceExt;
            match to.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    };
    let app = axum::Router::new()
        .fallback(by_content_type)
        .layer(tower::util::option_layer(cors(&config.cors_origins)?));
    let limits = connections::Limits {
        header_timeout: config.http_header_timeout,
        max_per_address: config.http_max_connections_per_address,
    };
    let tls = certificate
        .map(|c| c.acceptor(crate::tls::ALPN_HTTP))
        .transpose()?;
    connections::serve(grpc_listener, app, limits, tls, grpc_stop, GRPC_DRAIN_GRACE).await;
    stopper.await?;
    tracing::info!("liveproc stopped");
    Ok(())
}

/// Binds an RTMP listener (RTMPS with `tls`) when `listen` is given, and
/// starts its accept loop.
async fn rtmp_listener(
    listen: Option<SocketAddr>,
    tls: Option<TlsAcceptor>,
    ingest: &Ingest,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Option<SocketAddr>, Option<tokio::task::JoinHandle<()>>)> {
    let Some(listen) = listen else {
        return Ok((None, None));
    };
    let (addr, accept) = rtmp::bind(listen, ingest.clone(), tls, shutdown.clone())
        .await
        .with_context(|| format!("binding RTMP listener on {listen}"))?;
    Ok((Some(addr), Some(tokio::spawn(accept))))
}

/// Whether a request is for a gRPC service: `application/grpc`,
/// `application/grpc+proto`, `application/grpc-web`, ...
fn is_grpc<B>(request: &axum::http::Request<B>) -> bool {
    request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// CORS for the configured origins (none: same-origin pages only), for
/// grpc-web calls and media fetched by script (hls.js).
fn cors(origins: &[String]) -> anyhow::Result<Option<tower_http::cors::CorsLayer>> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| HeaderValue::from_str(o).with_context(|| format!("CORS origin {o:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let names = |names: &[&'static str]| -> Vec<HeaderName> {
        names.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    Ok(Some(
        tower_http::cors::CorsLayer::new()
            .allow_origin(origins)
            .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
            .allow_headers(
                [
                    header::AUTHORIZATION,
                    header::CONTENT_TYPE,
                    header::RANGE,
                    header::IF_NONE_MATCH,
                ]
                .into_iter()
                .chain(names(&["x-grpc-web", "x-user-agent", "grpc-timeout"]))
                .collect::<Vec<_>>(),
            )
            .expose_headers(
                [
                    header::CONTENT_RANGE,
                    header::ACCEPT_RANGES,
                    header::ETAG,
                    header::CONTENT_LENGTH,
                ]
                .into_iter()
                .chain(names(&[
                    "grpc-status",
                    "grpc-message",
                    "grpc-status-details-bin",
                ]))
                .collect::<Vec<_>>(),
            )
            .max_age(Duration::from_secs(600)),
    ))
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
/// is shown as `localhost` (set `srt_public_addr` and `rtmp_public_addr`
/// for real deployments).
fn public_addr(bound: SocketAddr) -> String {
    if bound.ip().is_unspecified() {
        format!("localhost:{}", bound.port())
    } else {
        bound.to_string()
    }
}
