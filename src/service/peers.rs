//! Where a stream's live data is: this node, or the node holding its live
//! session (its lease), reached at that node's `--advertise-url`.
//!
//! Records come from the shared registry on every node; live data
//! (thumbnails and motion clips as they are made, the replay buffer, HLS,
//! state events) is only on the node running the session. The gRPC
//! services forward such calls to that node, with the caller's metadata
//! and [`FORWARDED`] set, so that the node called answers them itself and
//! a call is forwarded at most once; HTTP routes redirect there.
//!
//! A stream with no live session anywhere is answered here (what this
//! node kept of it, if anything). With the embedded registry there is no
//! other node.
//!
//! A node whose advertise URL is `https://` (one serving TLS) is called
//! over TLS, its certificate checked against `--tls-peer-ca` or the
//! system's roots.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use tonic::transport::{Channel, Endpoint};

use crate::cluster::directory::Directory;
use crate::cluster::heartbeat::LOST_AFTER;
use crate::error::{Error, Result};
use crate::ids::StreamRef;
use crate::registry::Registry;

/// Metadata of a call forwarded by another node (its node id).
pub const FORWARDED: &str = "x-liveproc-forwarded-by";
/// How long a forwarded call waits to connect to the other node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a stream's live data is.
pub enum LiveAt {
    Here,
    Peer(Peer),
}

/// Another node, as this node reaches it.
#[derive(Clone)]
pub struct Peer {
    pub node_id: String,
    /// Its `--advertise-url` (gRPC and HTTP).
    pub url: String,
    pub channel: Channel,
}

/// The other nodes of the cluster.
pub struct Peers {
    registry: Arc<Registry>,
    /// This node.
    node_id: String,
    directory: Arc<Directory>,
    channels: DashMap<String, Channel>,
    /// How nodes at `https://` URLs are called.
    tls: Arc<rustls::ClientConfig>,
}

impl Peers {
    pub fn new(
        registry: Arc<Registry>,
        directory: Arc<Directory>,
        node_id: String,
        tls: Arc<rustls::ClientConfig>,
    ) -> Self {
        Self {
            registry,
            node_id,
            directory,
            channels: DashMap::new(),
            tls,
        }
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Where `stream`'s live data is now.
    pub async fn live_at(&self, stream: &StreamRef) -> Result<LiveAt> {
        if !self.registry.is_shared() {
            return Ok(LiveAt::Here);
        }
        let Some(holder) = self.registry.lease_holder(stream).await? else {
            return Ok(LiveAt::Here);
        };
        if holder.node_id == self.node_id {
            return Ok(LiveAt::Here);
        }
        let nodes = self.directory.nodes().await?;
        let Some(node) = nodes.iter().find(|n| {
            n.id == holder.node_id
                && !n.advertise_url.is_empty()
                && n.heartbeat_age_ms < LOST_AFTER.as_millis() as i64
        }) else {
            // Not heard of lately: its lease is about to lapse.
            return Ok(LiveAt::Here);
        };
        Ok(LiveAt::Peer(Peer {
            node_id: holder.node_id,
            url: node.advertise_url.clone(),
            channel: self.channel(&node.advertise_url)?,
        }))
    }

    /// A channel to `url`, made once and connected on first use.
    fn channel(&self, url: &str) -> Result<Channel> {
        if let Some(channel) = self.channels.get(url) {
            return Ok(channel.clone());
        }
        let endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::Storage(format!("the address of a node ({url}): {e}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = if endpoint.uri().scheme_str() == Some("https") {
            endpoint.connect_with_connector_lazy(tls_connector(Arc::clone(&self.tls)))
        } else {
            endpoint.connect_lazy()
        };
        self.channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }
}

/// Connects to the host and port of a URI over TLS, checking the
/// certificate for that host name.
fn tls_connector(
    config: Arc<rustls::ClientConfig>,
) -> impl tower::Service<
    tonic::codegen::http::Uri,
    Response = hyper_util::rt::TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>,
    Error = std::io::Error,
    Future = impl Send,
> + Clone
       + Send {
    tower::service_fn(move |uri: tonic::codegen::http::Uri| {
        let config = Arc::clone(&config);
        async move {
            let invalid = |what: &str| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what} in {uri}"))
            };
            let host = uri.host().ok_or_else(|| invalid("no host"))?;
            let host = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(443);
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|_| invalid("an invalid host name"))?;
            let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(hyper_util::rt::TokioIo::new(stream))
        }
    })
}
