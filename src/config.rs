//! Server settings. Each setting comes from, in order of precedence: a
//! command-line flag, a `LIVEPROC_*` environment variable, the TOML config
//! file (`--config`), or its default. The admin key comes only from the
//! `LIVEPROC_ADMIN_KEY` environment variable (never a flag, so it does not
//! show in process listings) or from the data dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";
pub const DEFAULT_SRT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATA_DIR: &str = "./data";
/// 256 MiB: 8.5 min of a 4 Mbit/s stream.
pub const DEFAULT_REPLAY_MEMORY_MB: u64 = 256;
/// Free space kept on the data dir's disk: no new recording below it.
pub const DEFAULT_MIN_FREE_DISK_MB: u64 = 256;
/// 10 minutes of the newest media in memory with `entire_stream` replay.
pub const DEFAULT_REPLAY_MEMORY_SECONDS: u64 = 600;
/// Seconds a client has to send request headers (nginx's
/// `client_header_timeout` is 60; browsers and gRPC clients send theirs at
/// once).
pub const DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS: u64 = 10;
/// What the dashboard says to ask for the live processing package when
/// `--operator-contact` is not set.
pub const DEFAULT_OPERATOR_CONTACT: &str =
    "Ask your liveproc operator to enable the live processing package.";

/// One `--pull-allow` entry: a network (`10.0.0.0/8`, `192.168.1.20`) or
/// a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullAllow {
    Network(ipnet::IpNet),
    Host(String),
}

impl std::str::FromStr for PullAllow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(net) = s.parse::<ipnet::IpNet>() {
            return Ok(PullAllow::Network(net));
        }
        if let Ok(ip) = s.parse::<std::net::IpAddr>() {
            return Ok(PullAllow::Network(ipnet::IpNet::from(ip)));
        }
        let valid = !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if valid {
            Ok(PullAllow::Host(s.to_ascii_lowercase()))
        } else {
            Err(format!(
                "{s:?} is neither a network (CIDR or address) nor a host name"
            ))
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Flags of `liveproc serve` (each also from its env var).
#[derive(Debug, Default, Args)]
pub struct ServeArgs {
    /// gRPC listen address (port 0 picks a free port).
    #[arg(long, env = "LIVEPROC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory of the registry and media files.
    #[arg(long, env = "LIVEPROC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Keep the registry in this PostgreSQL database
    /// (`postgres://user:password@host/db`) instead of the data dir; its
    /// schema is migrated at start.
    #[arg(long, env = "LIVEPROC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Keep recordings and replay clips in S3-compatible storage
    /// (`s3://bucket/prefix`), uploaded as they are written; endpoint and
    /// credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP.
    #[arg(long, env = "LIVEPROC_OBJECT_STORE")]
    pub object_store: Option<String>,
    /// This node's name among the nodes that share one database and
    /// object store (letters, digits, `.`, `_`, `-`; default: the host
    /// name). Its spilled replay media is kept under it.
    #[arg(long, env = "LIVEPROC_NODE_ID", value_parser = parse_node_id)]
    pub node_id: Option<String>,
    /// `scheme://host:port` at which the other nodes reach this node's
    /// gRPC/HTTP listener (default: the listen address over http).
    #[arg(long, env = "LIVEPROC_ADVERTISE_URL")]
    pub advertise_url: Option<String>,
    /// Most live sessions (publishers and pulls) this node takes; more are
    /// refused with the reason (default: no limit).
    #[arg(long, env = "LIVEPROC_MAX_STREAMS")]
    pub max_streams: Option<u32>,
    /// SRT listen address for publishers (port 0 picks a free port).
    #[arg(long, env = "LIVEPROC_SRT_LISTEN")]
    pub srt_listen: Option<SocketAddr>,
    /// `host:port` publishers use to reach the SRT listener, shown in each
    /// stream's `srt_url` (default: the SRT listen address).
    #[arg(long, env = "LIVEPROC_SRT_PUBLIC_ADDR")]
    pub srt_public_addr: Option<String>,
    /// RTMP listen address for publishers (OBS, ffmpeg `-f flv`, hardware
    /// encoders); port 0 picks a free port. No RTMP when not given.
    #[arg(long, env = "LIVEPROC_RTMP_LISTEN")]
    pub rtmp_listen: Option<SocketAddr>,
    /// `host:port` publishers use to reach the RTMP listener, shown in each
    /// stream's `rtmp_url` (default: the RTMP listen address).
    #[arg(long, env = "LIVEPROC_RTMP_PUBLIC_ADDR")]
    pub rtmp_public_addr: Option<String>,
    /// RTMPS (RTMP over TLS, with the `--tls-cert` certificate) listen
    /// address; port 0 picks a free port. No RTMPS when not given.
    #[arg(long, env = "LIVEPROC_RTMPS_LISTEN", requires = "tls_cert")]
    pub rtmps_listen: Option<SocketAddr>,
    /// `host:port` publishers use to reach the RTMPS listener, shown in
    /// each stream's `rtmps_url` (default: the RTMPS listen address).
    #[arg(long, env = "LIVEPROC_RTMPS_PUBLIC_ADDR")]
    pub rtmps_public_addr: Option<String>,
    /// `scheme://host[:port]` at which browsers reach this server's HTTP
    /// routes, the start of the URLs `SignUrl` makes (default: the listen
    /// address, over https with `--tls-cert`, else http).
    #[arg(long, env = "LIVEPROC_HTTP_PUBLIC_URL")]
    pub http_public_url: Option<String>,
    /// Certificate chain (PEM, leaf first) to serve gRPC, grpc-web, HTTP
    /// and the dashboard over TLS, on the one listen address; with
    /// `--tls-key`. Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "LIVEPROC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1) of `--tls-cert`.
    #[arg(long, env = "LIVEPROC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM) that the other nodes' certificates are
    /// checked against when their advertise URL is `https://` (default:
    /// the system's roots).
    #[arg(long, env = "LIVEPROC_TLS_PEER_CA")]
    pub tls_peer_ca: Option<PathBuf>,
    /// Threads receiving SRT, each on its own socket of the SRT port
    /// (`SO_REUSEPORT`: the kernel spreads callers over them). Default:
    /// one per two CPU cores.
    #[arg(long, env = "LIVEPROC_SRT_RECEIVE_THREADS", value_parser = clap::value_parser!(u16).range(1..=64))]
    pub srt_receive_threads: Option<u16>,
    /// Most malloc arenas (glibc). Fewer arenas keep the memory that
    /// churn frees together, where it can be given back to the system;
    /// each arena is a lock the threads allocating in it share. Default:
    /// one per eight CPU cores, at least 2; 0: glibc's own (8 per core).
    #[arg(long, env = "LIVEPROC_MALLOC_ARENAS", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub malloc_arenas: Option<u16>,
    /// TOML config file with any of the settings above (snake_case keys).
    #[arg(long, env = "LIVEPROC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Most memory (MiB of media) one stream's replay buffer may hold;
    /// older GOPs are evicted past it.
    #[arg(long, env = "LIVEPROC_REPLAY_MEMORY_MB")]
    pub replay_memory_mb: Option<u64>,
    /// With `entire_stream` replay: seconds of the newest media kept in
    /// memory; older GOPs are spilled to disk.
    #[arg(long, env = "LIVEPROC_REPLAY_MEMORY_SECONDS")]
    pub replay_memory_seconds: Option<u64>,
    /// Seconds between the tiles of a storyboard (hover previews of the
    /// replay window): at most one tile per this much time.
    #[arg(long, env = "LIVEPROC_STORYBOARD_INTERVAL_SECONDS", value_parser = clap::value_parser!(u16).range(1..=60))]
    pub storyboard_interval_seconds: Option<u16>,
    /// Create a demo organization and a demo stream fed by the built-in
    /// test pattern, and print how to use them.
    #[arg(long, env = "LIVEPROC_DEMO")]
    pub demo: bool,
    /// A folder whose files streams may pull (`file://`); repeat for more.
    /// None by default: file sources are refused. Never the data dir.
    #[arg(
        long = "pull-allow-file-dir",
        env = "LIVEPROC_PULL_ALLOW_FILE_DIRS",
        value_delimiter = ','
    )]
    pub pull_allow_file_dirs: Vec<PathBuf>,
    /// A network (CIDR or address) or host name that pulled sources may
    /// reach although it is not public (loopback, private, link-local...);
    /// repeat for more. None by default.
    #[arg(
        long = "pull-allow",
        env = "LIVEPROC_PULL_ALLOW",
        value_delimiter = ','
    )]
    pub pull_allow: Vec<PullAllow>,
    /// Free disk space (MiB) below which no new recording file is started.
    #[arg(long, env = "LIVEPROC_MIN_FREE_DISK_MB")]
    pub min_free_disk_mb: Option<u64>,
    /// A web origin (`https://app.example.com`) whose pages may call the
    /// API (grpc-web) and fetch media by script (hls.js); repeat for more.
    /// None by default: only pages served by liveproc itself.
    #[arg(
        long = "cors-origin",
        env = "LIVEPROC_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Who organizations ask for the live processing package: the
    /// dashboard shows it where it says "Upgrade needed".
    #[arg(long, env = "LIVEPROC_OPERATOR_CONTACT")]
    pub operator_contact: Option<String>,
    /// Allow http(s):// (HLS) pull sources. Off by default: an HLS
    /// playlist names segment URLs the server fetches without the pull
    /// policy's address checks.
    #[arg(long, env = "LIVEPROC_PULL_ALLOW_HTTP")]
    pub pull_allow_http: bool,
    /// Seconds a client has to send a request's headers on the gRPC/HTTP
    /// address (from connecting, for the first request), and that an
    /// HTTP/1.1 connection may sit idle between requests.
    #[arg(long, env = "LIVEPROC_HTTP_HEADER_TIMEOUT_SECONDS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub http_header_timeout_seconds: Option<u64>,
    /// Most connections one client address may hold open on the
    /// gRPC/HTTP address at once (0: no limit; default 256). Connections
    /// past it are closed at once.
    #[arg(long, env = "LIVEPROC_HTTP_MAX_CONNECTIONS_PER_ADDRESS")]
    pub http_max_connections_per_address: Option<u32>,
    /// Address of `/metrics` (Prometheus), apart from the API's (port 0
    /// picks a free port). Off by default.
    #[arg(long, env = "LIVEPROC_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Log lines as JSON objects (`json`, for log shippers) or as text
    /// (`text`, the default).
    #[arg(long, env = "LIVEPROC_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A network (CIDR or address) or host name that webhook endpoints may
    /// reach although it is not public; repeat for more. None by default.
    #[arg(
        long = "webhook-allow",
        env = "LIVEPROC_WEBHOOK_ALLOW",
        value_delimiter = ','
    )]
    pub webhook_allow: Vec<PullAllow>,
    /// Seconds a webhook attempt may take (default 10).
    #[arg(long, env = "LIVEPROC_WEBHOOK_TIMEOUT_SECONDS", value_parser = clap::value_parser!(u64).range(1..=60))]
    pub webhook_timeout_seconds: Option<u64>,
    /// Seconds before a failed webhook attempt is retried the first time;
    /// the pause doubles with every attempt, up to 2 hours (default 5).
    #[arg(long, env = "LIVEPROC_WEBHOOK_FIRST_RETRY_SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_first_retry_seconds: Option<u64>,
    /// Seconds an undelivered webhook event is retried, and that an
    /// endpoint may fail every attempt before it is disabled (default
    /// 86400: 24 hours).
    #[arg(long, env = "LIVEPROC_WEBHOOK_RETRY_FOR_SECONDS", value_parser = clap::value_parser!(u64).range(10..=604800))]
    pub webhook_retry_for_seconds: Option<u64>,
    /// Days audit events are kept; older ones are deleted (0: kept
    /// forever; default 90).
    #[arg(long, env = "LIVEPROC_AUDIT_RETENTION_DAYS", value_parser = clap::value_parser!(u32).range(0..=36500))]
    pub audit_retention_days: Option<u32>,
}

/// The config file: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    object_store: Option<String>,
    node_id: Option<String>,
    advertise_url: Option<String>,
    max_streams: Option<u32>,
    srt_listen: Option<SocketAddr>,
    srt_public_addr: Option<String>,
    srt_receive_threads: Option<u16>,
    malloc_arenas: Option<u16>,
    rtmp_listen: Option<SocketAddr>,
    rtmp_public_addr: Option<String>,
    rtmps_listen: Option<SocketAddr>,
    rtmps_public_addr: Option<String>,
    http_public_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_peer_ca: Option<PathBuf>,
    http_max_connections_per_address: Option<u32>,
    replay_memory_mb: Option<u64>,
    replay_memory_seconds: Option<u64>,
    storyboard_interval_seconds: Option<u16>,
    demo: Option<bool>,
    pull_allow_file_dirs: Option<Vec<PathBuf>>,
    pull_allow: Option<Vec<String>>,
    min_free_disk_mb: Option<u64>,
    pull_allow_http: Option<bool>,
    cors_origins: Option<Vec<String>>,
    operator_contact: Option<String>,
    http_header_timeout_seconds: Option<u64>,
    webhook_allow: Option<Vec<String>>,
    metrics_listen: Option<SocketAddr>,
    log_format: Option<LogFormat>,
    webhook_timeout_seconds: Option<u64>,
    webhook_first_retry_seconds: Option<u64>,
    webhook_retry_for_seconds: Option<u64>,
    audit_retention_days: Option<u32>,
}

/// Resolved settings of a server.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The PostgreSQL registry; `None`: the embedded one in the data dir.
    pub database_url: Option<String>,
    /// `s3://bucket/prefix` for recordings and clips; `None`: the data dir.
    pub object_store: Option<String>,
    /// This node's name ([`ServeArgs::node_id`]).
    pub node_id: String,
    /// Where other nodes reach this one; `None`: the listen address.
    pub advertise_url: Option<String>,
    /// Most live sessions on this node (0: no limit).
    pub max_streams: u32,
    pub srt_listen: SocketAddr,
    pub srt_public_addr: Option<String>,
    /// Threads (and sockets) receiving SRT.
    pub srt_receive_threads: usize,
    /// Most malloc arenas; 0: the allocator's default.
    pub malloc_arenas: usize,
    /// The RTMP listener, if any.
    pub rtmp_listen: Option<SocketAddr>,
    pub rtmp_public_addr: Option<String>,
    /// Where browsers reach the HTTP routes; `None`: the listen address.
    pub http_public_url: Option<String>,
    pub replay_memory_mb: u64,
    pub replay_memory_seconds: u64,
    /// Time per storyboard tile.
    pub storyboard_interval: std::time::Duration,
    pub demo: bool,
    /// Folders `file://` sources may be under.
    pub pull_allow_file_dirs: Vec<PathBuf>,
    /// Non-public networks and hosts pulled sources may reach.
    pub pull_allow: Vec<PullAllow>,
    /// Free disk space below which no new recording file is started.
    pub min_free_disk_mb: u64,
    /// http(s):// (HLS) pull sources allowed.
    pub pull_allow_http: bool,
    /// Web origins allowed to call the API and fetch media by script.
    pub cors_origins: Vec<String>,
    /// Shown by the dashboard where live processing needs an upgrade.
    pub operator_contact: String,
    /// How long a client has to send request headers; also the idle
    /// timeout of HTTP/1.1 connections.
    pub http_header_timeout: std::time::Duration,
    /// Most open connections per client address on the gRPC/HTTP address;
    /// 0: no limit.
    pub http_max_connections_per_address: usize,
    /// The certificate and key of the gRPC/HTTP address (and RTMPS);
    /// `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// CA certificates the other nodes' certificates are checked
    /// against; `None`: the system's roots.
    pub tls_peer_ca: Option<PathBuf>,
    /// The RTMPS listen address; `None`: no RTMPS.
    pub rtmps_listen: Option<SocketAddr>,
    pub rtmps_public_addr: Option<String>,
    /// Where `/metrics` is served; `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// Non-public networks and hosts webhook endpoints may reach.
    pub webhook_allow: Vec<PullAllow>,
    /// How webhooks are delivered and retried.
    pub webhooks: crate::webhooks::delivery::Settings,
    /// How long audit events are kept; `None`: forever.
    pub audit_retention: Option<std::time::Duration>,
    /// From `LIVEPROC_ADMIN_KEY`.
    pub admin_key: Option<String>,
}

/// Paths of a PEM certificate chain and its private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Default of `audit_retention_days`: a quarter of a year.
const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;

/// Default of `http_max_connections_per_address`: far more than browsers
/// (6 per origin over HTTP/1.1, 1 over HTTP/2) or gRPC clients open, few
/// enough that one address cannot take the server's file descriptors.
pub const DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS: u32 = 256;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid config file {path}: {reason}")]
    PullAllow { path: PathBuf, reason: String },
    #[error("invalid config file {path}: node_id: {reason}")]
    NodeId { path: PathBuf, reason: String },
    #[error("tls_cert and tls_key go together: give both or neither")]
    TlsPair,
    #[error("rtmps_listen needs tls_cert and tls_key")]
    RtmpsWithoutTls,
}

/// One SRT receive thread per two cores: one thread takes a few hundred
/// streams, and batching is better with more streams per thread.
fn default_srt_receive_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().div_ceil(2))
        .unwrap_or(1)
        .min(8)
}

/// One malloc arena per eight cores, at least 2: on 2 cores, two arenas
/// cost no measurable CPU and hold the RSS left after churn flat, where
/// glibc's default (16 on 2 cores) let it creep (`bench/soak.json`).
fn default_malloc_arenas() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().div_ceil(8))
        .unwrap_or(1)
        .max(2)
}

/// A node id: 1–63 letters, digits, `.`, `_` or `-` (it names folders
/// of the object store and appears in logs).
fn parse_node_id(id: &str) -> Result<String, String> {
    let valid = (1..=63).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid && !id.starts_with('.') {
        Ok(id.to_string())
    } else {
        Err(format!(
            "{id:?} is not a node id (1-63 letters, digits, '.', '_', '-')"
        ))
    }
}

/// The default node id: the host name, where it is a valid one.
fn default_node_id() -> String {
    let host = rustix::system::uname();
    let host = host.nodename().to_string_lossy();
    parse_node_id(host.split('.').next().unwrap_or_default())
        .unwrap_or_else(|_| "liveproc".to_string())
}

/// An allow list from its flags, else from the config file's `key`.
fn allow_list(
    flags: Vec<PullAllow>,
    file: Option<Vec<String>>,
    path: &Path,
    key: &str,
) -> Result<Vec<PullAllow>, ConfigError> {
    if !flags.is_empty() {
        return Ok(flags);
    }
    file.unwrap_or_default()
        .iter()
        .map(|entry| entry.parse())
        .collect::<Result<_, _>>()
        .map_err(|reason| ConfigError::PullAllow {
            path: path.to_path_buf(),
            reason: format!("{key}: {reason}"),
        })
}

fn load_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

impl Config {
    pub fn resolve(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let config_path = args.config.clone().unwrap_or_default();
        let pull_allow = allow_list(args.pull_allow, file.pull_allow, &config_path, "pull_allow")?;
        let webhook_allow = allow_list(
            args.webhook_allow,
            file.webhook_allow,
            &config_path,
            "webhook_allow",
        )?;
        let webhooks = {
            use std::time::Duration;
            let defaults = crate::webhooks::delivery::Settings::default();
            let seconds = |arg: Option<u64>, file: Option<u64>, default: Duration| {
                arg.or(file).map_or(default, Duration::from_secs)
            };
            crate::webhooks::delivery::Settings {
                timeout: seconds(
                    args.webhook_timeout_seconds,
                    file.webhook_timeout_seconds,
                    defaults.timeout,
                ),
                first_retry: seconds(
                    args.webhook_first_retry_seconds,
                    file.webhook_first_retry_seconds,
                    defaults.first_retry,
                ),
                retry_for: seconds(
                    args.webhook_retry_for_seconds,
                    file.webhook_retry_for_seconds,
                    defaults.retry_for,
                ),
                ..defaults
            }
        };
        let pull_allow_file_dirs = if !args.pull_allow_file_dirs.is_empty() {
            args.pull_allow_file_dirs
        } else {
            file.pull_allow_file_dirs.unwrap_or_default()
        };
        let node_id = match (args.node_id, file.node_id) {
            (Some(id), _) => id,
            (None, Some(id)) => parse_node_id(&id).map_err(|reason| ConfigError::NodeId {
                path: args.config.clone().unwrap_or_default(),
                reason,
            })?,
            (None, None) => default_node_id(),
        };
        let admin_key = std::env::var("LIVEPROC_ADMIN_KEY")
            .ok()
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty());
        let tls = match (
            args.tls_cert.or(file.tls_cert),
            args.tls_key.or(file.tls_key),
        ) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => return Err(ConfigError::TlsPair),
        };
        let rtmps_listen = args.rtmps_listen.or(file.rtmps_listen);
        if rtmps_listen.is_some() && tls.is_none() {
            return Err(ConfigError::RtmpsWithoutTls);
        }
        Ok(Self {
            tls,
            tls_peer_ca: args.tls_peer_ca.or(file.tls_peer_ca),
            rtmps_listen,
            rtmps_public_addr: args.rtmps_public_addr.or(file.rtmps_public_addr),
            http_max_connections_per_address: args
                .http_max_connections_per_address
                .or(file.http_max_connections_per_address)
                .unwrap_or(DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS)
                as usize,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("default address")),
            data_dir: args
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            database_url: args
                .database_url
                .or(file.database_url)
                .filter(|url| !url.trim().is_empty()),
            object_store: args
                .object_store
                .or(file.object_store)
                .filter(|url| !url.trim().is_empty()),
            node_id,
            advertise_url: args
                .advertise_url
                .or(file.advertise_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            max_streams: args.max_streams.or(file.max_streams).unwrap_or(0),
            srt_listen: args
                .srt_listen
                .or(file.srt_listen)
                .unwrap_or_else(|| DEFAULT_SRT_LISTEN.parse().expect("default address")),
            srt_public_addr: args.srt_public_addr.or(file.srt_public_addr),
            rtmp_listen: args.rtmp_listen.or(file.rtmp_listen),
            rtmp_public_addr: args.rtmp_public_addr.or(file.rtmp_public_addr),
            http_public_url: args
                .http_public_url
                .or(file.http_public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            srt_receive_threads: args
                .srt_receive_threads
                .or(file.srt_receive_threads)
                .map(|n| usize::from(n.clamp(1, 64)))
                .unwrap_or_else(default_srt_receive_threads),
            malloc_arenas: args
                .malloc_arenas
                .or(file.malloc_arenas)
                .map(usize::from)
                .unwrap_or_else(default_malloc_arenas),
            replay_memory_mb: args
                .replay_memory_mb
                .or(file.replay_memory_mb)
                .unwrap_or(DEFAULT_REPLAY_MEMORY_MB),
            replay_memory_seconds: args
                .replay_memory_seconds
                .or(file.replay_memory_seconds)
                .unwrap_or(DEFAULT_REPLAY_MEMORY_SECONDS),
            storyboard_interval: std::time::Duration::from_secs(u64::from(
                args.storyboard_interval_seconds
                    .or(file.storyboard_interval_seconds)
                    .unwrap_or(5)
                    .clamp(1, 60),
            )),
            demo: args.demo || file.demo.unwrap_or(false),
            pull_allow_file_dirs,
            pull_allow,
            min_free_disk_mb: args
                .min_free_disk_mb
                .or(file.min_free_disk_mb)
                .unwrap_or(DEFAULT_MIN_FREE_DISK_MB),
            pull_allow_http: args.pull_allow_http || file.pull_allow_http.unwrap_or(false),
            webhook_allow,
            webhooks,
            audit_retention: match args
                .audit_retention_days
                .or(file.audit_retention_days)
                .unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS)
            {
                0 => None,
                days => Some(std::time::Duration::from_secs(u64::from(days) * 86400)),
            },
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            log_format: args.log_format.or(file.log_format).unwrap_or_default(),
            cors_origins: if args.cors_origins.is_empty() {
                file.cors_origins.unwrap_or_default()
            } else {
                args.cors_origins
            },
            operator_contact: args
                .operator_contact
                .or(file.operator_contact)
                .unwrap_or_else(|| DEFAULT_OPERATOR_CONTACT.to_string()),
            http_header_timeout: std::time::Duration::from_secs(
                args.http_header_timeout_seconds
                    .or(file.http_header_timeout_seconds)
                    .unwrap_or(DEFAULT_HTTP_HEADER_TIMEOUT_SECONDS)
                    .clamp(1, 600),
            ),
            admin_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_files_come_in_pairs_and_rtmps_needs_them() {
        let dir = tempfile::tempdir().unwrap();
        let with = |text: &str| {
            let path = dir.path().join("liveproc.toml");
            std::fs::write(&path, text).unwrap();
            Config::resolve(ServeArgs {
                config: Some(path),
                ..Default::default()
            })
        };
        let half = with("tls_cert = \"/etc/tls/cert.pem\"\n");
        assert!(matches!(half, Err(ConfigError::TlsPair)));
        let rtmps = with("rtmps_listen = \"127.0.0.1:1936\"\n");
        assert!(matches!(rtmps, Err(ConfigError::RtmpsWithoutTls)));
        let both = with("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"\n").unwrap();
        let files = both.tls.expect("TLS on");
        assert_eq!((files.cert, files.key), ("c.pem".into(), "k.pem".into()));
        assert_eq!(
            both.http_max_connections_per_address,
            DEFAULT_HTTP_MAX_CONNECTIONS_PER_ADDRESS as usize
        );
    }

    #[test]
    fn flags_override_file_and_defaults_fill_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liveproc.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\nsrt_listen = \"127.0.0.1:7001\"\n",
        )
        .unwrap();
        let config = Config::resolve(ServeArgs {
            listen: Some("127.0.0.1:8000".parse().unwrap()),
            config: Some(path),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(config.listen.port(), 8000);
        assert_eq!(config.srt_listen.port(), 7001);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(
            config.audit_retention,
            Some(std::time::Duration::from_secs(90 * 86400))
        );
        assert!(config.malloc_arenas >= 2, "{}", config.malloc_arenas);
    }

    #[test]
    fn malloc_arenas_come_from_the_file_and_zero_means_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("arenas.toml");
        std::fs::write(&path, "malloc_arenas = 4\n").unwrap();
        let from_file = Config::resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(from_file.malloc_arenas, 4);
        let glibc_default = Config::resolve(ServeArgs {
            config: Some(path),
            malloc_arenas: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(glibc_default.malloc_arenas, 0);
    }

    #[test]
    fn audit_retention_zero_keeps_events_forever() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.toml");
        std::fs::write(&path, "audit_retention_days = 7\n").unwrap();
        let from_file = Config::resolve(ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            from_file.audit_retention,
            Some(std::time::Duration::from_secs(7 * 86400))
        );
        let forever = Config::resolve(ServeArgs {
            config: Some(path),
            audit_retention_days: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(forever.audit_retention, None);
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "listn = \"127.0.0.1:7000\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("listn"), "{err}");
    }

    #[test]
    fn node_ids_are_checked_and_default_to_the_host_name() {
        assert_eq!(parse_node_id("node-1.a_b").unwrap(), "node-1.a_b");
        for bad in ["", ".hidden", "a/b", "a b", &"n".repeat(64)] {
            assert!(parse_node_id(bad).is_err(), "{bad:?}");
        }
        let config = Config::resolve(ServeArgs::default()).unwrap();
        assert!(parse_node_id(&config.node_id).is_ok(), "{}", config.node_id);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.toml");
        std::fs::write(&path, "node_id = \"../x\"\n").unwrap();
        let err = Config::resolve(ServeArgs {
            config: Some(path),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.to_string().contains("node_id"), "{err}");
    }
}
