//! What the server may pull from: an operator's decision, not an
//! organization's. An organization names a `source_uri`; this policy says
//! whether the server will open it, so that no organization can make the
//! server read local files (another organization's recordings, its own
//! registry) or reach internal addresses (SSRF).
//!
//! - `test://` (the built-in pattern) is always allowed.
//! - `file://` only under the folders the operator lists
//!   (`--pull-allow-file-dir`), never under the data dir, after every
//!   symbolic link is resolved; off by default.
//! - Network sources (`srt`, `rtsp(s)`, `rtmp`, `http(s)`): every address
//!   the host resolves to must be a public one, unless the operator allows
//!   its network or the host by name (`--pull-allow`). Loopback,
//!   unspecified, private, shared (CGNAT), link-local, multicast, reserved
//!   and documentation ranges and the server's own interface addresses are
//!   refused. Checked when the stream is created (the URI as written) and
//!   again before every pull attempt (the host as it resolves then).
//!   HTTP redirects are not followed by pulled sources (see
//!   [`crate::pipeline::source`]).
//! - `http(s)://` (HLS) only when the operator enables it
//!   (`--pull-allow-http`): a playlist names segment URLs that GStreamer
//!   fetches with its own client, which this policy cannot check.
//! - Query parameters: GStreamer's `srtsrc` reads its settings from the
//!   URI's query, some of which would make the server bind a port
//!   (`mode=listener`, `mode=rendezvous`, `localaddress`, `localport`).
//!   An `srt://` source takes only the parameters on [`SRT_PARAMETERS`],
//!   read the way GStreamer reads them, and `mode` may only be `caller`.
//!   The other schemes' elements read nothing from the query: it goes to
//!   the remote server as part of the resource's address.
//! - A URI with white space, control characters or backslashes is
//!   refused (parsers disagree on those), and the URI opened is the one
//!   this policy parsed and wrote back, never the text as given.
//!
//! Refusals say what rule was broken, never what the file system holds.

use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use ipnet::IpNet;

pub use crate::config::PullAllow;

/// Why a source is refused. Each message is safe to show to the
/// organization that asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PullRefused {
    #[error("must be a URI with one of the schemes {0}")]
    Scheme(String),
    #[error("must be a well-formed URI with a host")]
    Malformed,
    #[error("file:// sources are not enabled on this server (the operator allows folders with --pull-allow-file-dir)")]
    FilesDisabled,
    #[error("must be an absolute file:// path inside a folder the operator allows")]
    FileOutside,
    #[error("http(s):// sources are not enabled on this server: an HLS playlist can send the server to addresses it cannot check first (the operator enables them with --pull-allow-http)")]
    HttpDisabled,
    #[error("the source file is not available")]
    FileUnavailable,
    #[error(
        "must not point to {0} address (the operator allows networks or hosts with --pull-allow)"
    )]
    Address(&'static str),
    #[error("the host does not resolve")]
    Unresolved,
    #[error("must not contain white space, control characters or backslashes")]
    Characters,
    #[error("srt:// query parameter {0:?} is not allowed (allowed: mode=caller, streamid, passphrase, pbkeylen, latency)")]
    SrtParameter(String),
    #[error("srt:// sources must use mode=caller: the server never listens for a pulled source")]
    SrtMode,
}

/// The query parameters an `srt://` source may carry, as GStreamer's
/// `srtsrc` names them. `mode` must be `caller`; the others set the
/// caller's stream id, encryption and latency. Everything that binds a
/// local socket (`localaddress`, `localport`, listener and rendezvous
/// modes) is left out.
pub const SRT_PARAMETERS: &[&str] = &["mode", "streamid", "passphrase", "pbkeylen", "latency"];

/// Schemes a stream may pull from.
pub const PULL_SCHEMES: &[&str] = &[
    "srt", "rtsp", "rtsps", "rtmp", "http", "https", "file", "test",
];

/// The operator's pull settings, resolved once at start-up.
#[derive(Debug, Clone, Default)]
pub struct PullPolicy {
    /// Folders file:// sources may be under (canonical).
    file_dirs: Vec<PathBuf>,
    /// The data dir (canonical): never a source.
    data_dir: PathBuf,
    /// Networks allowed even where the defaults refuse them.
    allowed_networks: Vec<IpNet>,
    /// Host names allowed whatever they resolve to (lowercase).
    allowed_hosts: Vec<String>,
    /// The server's own interface addresses.
    own_addresses: Vec<IpAddr>,
    /// Whether http(s) (HLS) sources may be pulled.
    http: bool,
}

impl PullPolicy {
    /// The policy of a server with data dir `data_dir`. Folders that do not
    /// exist are left out (with a warning): they could not hold a source.
    pub fn new(data_dir: &Path, file_dirs: &[PathBuf], allow: &[PullAllow]) -> Self {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| absolute(p));
        let file_dirs = file_dirs
            .iter()
            .filter_map(|dir| match std::fs::canonicalize(dir) {
                Ok(dir) => Some(dir),
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "pull file folder left out");
                    None
                }
            })
            .collect();
        let (mut allowed_networks, mut allowed_hosts) = (vec![], vec![]);
        for entry in allow {
            match entry {
                PullAllow::Network(net) => allowed_networks.push(*net),
                PullAllow::Host(host) => allowed_hosts.push(host.clone()),
            }
        }
        let own_addresses = if_addrs::get_if_addrs()
            .map(|list| list.into_iter().map(|i| i.ip()).collect())
            .unwrap_or_default();
        Self {
            file_dirs,
            data_dir: canonical(data_dir),
            allowed_networks,
            allowed_hosts,
            own_addresses,
            http: false,
        }
    }

    /// Allows http(s) (HLS) sources. Their playlists name the segment URLs
    /// the server then fetches, with GStreamer's own HTTP client: those
    /// are not checked against this policy, so this is for operators whose
    /// HLS sources are trusted.
    pub fn with_http(mut self, allowed: bool) -> Self {
        self.http = allowed;
        self
    }

    /// Checks a source as written (stream creation): scheme, file folder,
    /// and a host given as an address. Host names are checked when pulled.
    pub fn check(&self, uri: &str) -> Result<(), PullRefused> {
        match parse(uri)? {
            Target::TestPattern => Ok(()),
            Target::File(path) => self.check_file_path(&path),
            Target::Network { http: true, .. } if !self.http => Err(PullRefused::HttpDisabled),
            Target::Network { host, .. } => match host.parse::<IpAddr>() {
                Ok(ip) => self.check_address(&host, ip),
                Err(_) => Ok(()),
            },
        }
    }

    /// Checks a source right before it is opened: files with their links
    /// resolved, hosts with every address they resolve to now. Returns
    /// the URI to open: pinned to what was checked (the file's real path;
    /// for `srt`, `rtsp` and `rtmp`, the address checked in place of the
    /// name, so that a second lookup cannot lead elsewhere).
    pub async fn check_before_pull(&self, uri: &str) -> Result<String, PullRefused> {
        match parse(uri)? {
            Target::TestPattern => Ok(uri.to_string()),
            Target::File(path) => {
                self.check_file_path(&path)?;
                let real =
                    std::fs::canonicalize(&path).map_err(|_| PullRefused::FileUnavailable)?;
                self.check_file_path(&real)?;
                if !real.is_file() {
                    return Err(PullRefused::FileUnavailable);
                }
                url::Url::from_file_path(&real)
                    .map(String::from)
                    .map_err(|_| PullRefused::FileUnavailable)
            }
            Target::Network { http: true, .. } if !self.http => Err(PullRefused::HttpDisabled),
            Target::Network {
                host,
                port,
                http,
                url,
            } => {
                if let Ok(ip) = host.parse::<IpAddr>() {
                    self.check_address(&host, ip)?;
                    return Ok(url.into());
                }
                let addresses: Vec<IpAddr> = tokio::net::lookup_host((host.as_str(), port))
                    .await
                    .map_err(|_| PullRefused::Unresolved)?
                    .map(|a| a.ip())
                    .collect();
                if addresses.is_empty() {
                    return Err(PullRefused::Unresolved);
                }
                for ip in &addresses {
                    self.check_address(&host, *ip)?;
                }
                if http {
                    // HTTPS needs the name (certificates, virtual hosts).
                    return Ok(url.into());
                }
                let mut pinned = url;
                pinned
                    .set_ip_host(addresses[0])
                    .map_err(|_| PullRefused::Malformed)?;
                Ok(pinned.into())
            }
        }
    }

    fn check_file_path(&self, path: &Path) -> Result<(), PullRefused> {
        if self.file_dirs.is_empty() {
            return Err(PullRefused::FilesDisabled);
        }
        let path = normalized(path).ok_or(PullRefused::FileOutside)?;
        let inside = self.file_dirs.iter().any(|dir| path.starts_with(dir));
        if !inside || path.starts_with(&self.data_dir) {
            return Err(PullRefused::FileOutside);
        }
        Ok(())
    }

    /// Whether `host`, at `ip`, may be reached: public addresses, and
    /// what the operator allows. (Webhook endpoints are held to this too.)
    pub fn check_address(&self, host: &str, ip: IpAddr) -> Result<(), PullRefused> {
        let ip = canonical_ip(ip);
        if self.allowed_hosts.iter().any(|h| h == host) {
            return Ok(());
        }
        if self.allowed_networks.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        if self
            .own_addresses
            .iter()
            .any(|own| canonical_ip(*own) == ip)
        {
            return Err(PullRefused::Address("one of the server's own"));
        }
        match refused_range(ip) {
            Some(kind) => Err(PullRefused::Address(kind)),
            None => Ok(()),
        }
    }
}

/// What a source URI points at.
enum Target {
    TestPattern,
    File(PathBuf),
    Network {
        host: String,
        port: u16,
        http: bool,
        /// The URI as parsed: what is opened, written back by the parser.
        url: url::Url,
    },
}

fn parse(uri: &str) -> Result<Target, PullRefused> {
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return Err(PullRefused::Characters);
    }
    let scheme_error = || PullRefused::Scheme(PULL_SCHEMES.join(", "));
    let (scheme, _) = uri.split_once("://").ok_or_else(scheme_error)?;
    let scheme = scheme.to_ascii_lowercase();
    if !PULL_SCHEMES.contains(&scheme.as_str()) {
        return Err(scheme_error());
    }
    if scheme == "test" {
        return Ok(Target::TestPattern);
    }
    let url = url::Url::parse(uri).map_err(|_| PullRefused::Malformed)?;
    if scheme == "file" {
        // file://host/path is a remote share: refused.
        if url
            .host_str()
            .is_some_and(|h| !h.is_empty() && h != "localhost")
        {
            return Err(PullRefused::FileOutside);
        }
        let path = url.to_file_path().map_err(|_| PullRefused::FileOutside)?;
        return Ok(Target::File(path));
    }
    let host = match url.host().ok_or(PullRefused::Malformed)? {
        url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let port = url
        .port_or_known_default()
        .unwrap_or(match scheme.as_str() {
            "rtsp" => 554,
            "rtsps" => 322,
            "rtmp" => 1935,
            _ => 0,
        });
    let http = matches!(scheme.as_str(), "http" | "https");
    if scheme == "srt" {
        check_srt_query(url.query().unwrap_or(""))?;
    }
    Ok(Target::Network {
        host,
        port,
        http,
        url,
    })
}

/// Checks an `srt://` query as GStreamer reads it (`gst_uri_from_string`:
/// parts split at `&`, key and value split at the first `=`, both
/// percent-decoded, the last of a repeated key wins): every key on
/// [`SRT_PARAMETERS`], at most once, and `mode` only `caller`.
fn check_srt_query(query: &str) -> Result<(), PullRefused> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut seen = Vec::new();
    for part in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = match part.split_once('=') {
            Some((k, v)) => (decode(k), Some(decode(v))),
            None => (decode(part), None),
        };
        let shown = || key.chars().take(40).collect::<String>();
        if !SRT_PARAMETERS.contains(&key.as_str()) || seen.contains(&key) {
            return Err(PullRefused::SrtParameter(shown()));
        }
        if key == "mode" && value.as_deref() != Some("caller") {
            return Err(PullRefused::SrtMode);
        }
        seen.push(key);
    }
    Ok(())
}

/// `path` with `.` and `..` resolved lexically; `None` when it is not
/// absolute or climbs above the root.
fn normalized(path: &Path) -> Option<PathBuf> {
    if !path.is_absolute() {
        return None;
    }
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn absolute(path: &Path) -> PathBuf {
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .ok()
        .and_then(|p| normalized(&p))
        .unwrap_or_else(|| path.to_path_buf())
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The kind of a range that is not the public internet, if `ip` is in one.
fn refused_range(ip: IpAddr) -> Option<&'static str> {
    const RANGES: &[(&str, &str)] = &[
        ("0.0.0.0/8", "an unspecified"),
        ("10.0.0.0/8", "a private"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT)"),
        ("127.0.0.0/8", "a loopback"),
        ("169.254.0.0/16", "a link-local"),
        ("172.16.0.0/12", "a private"),
        ("192.0.0.0/24", "a reserved"),
        ("192.0.2.0/24", "a documentation"),
        ("192.88.99.0/24", "a reserved"),
        ("192.168.0.0/16", "a private"),
        ("198.18.0.0/15", "a benchmarking"),
        ("198.51.100.0/24", "a documentation"),
        ("203.0.113.0/24", "a documentation"),
        ("224.0.0.0/4", "a multicast"),
        ("240.0.0.0/4", "a reserved"),
        ("::/128", "an unspecified"),
        ("::1/128", "a loopback"),
        ("64:ff9b::/96", "a translated (NAT64)"),
        ("100::/64", "a discard"),
        ("2001:db8::/32", "a documentation"),
        ("fc00::/7", "a private (unique local)"),
        ("fe80::/10", "a link-local"),
        ("fec0::/10", "a site-local"),
        ("ff00::/8", "a multicast"),
    ];
    RANGES.iter().find_map(|(net, kind)| {
        let net: IpNet = net.parse().expect("a valid range");
        net.contains(&ip).then_some(*kind)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(files: &[&Path], allow: &[&str]) -> PullPolicy {
        let data = tempfile::tempdir().unwrap();
        let mut policy = PullPolicy::new(
            data.path(),
            &files.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>(),
            &allow.iter().map(|a| a.parse().unwrap()).collect::<Vec<_>>(),
        );
        policy.own_addresses = vec!["203.0.114.7".parse().unwrap()];
        policy.with_http(true)
    }

    #[test]
    fn files_are_off_by_default_and_confined_to_allowed_folders() {
        let none = policy(&[], &[]);
        assert_eq!(
            none.check("file:///etc/passwd"),
            Err(PullRefused::FilesDisabled)
        );
        let dir = tempfile::tempdir().unwrap();
        let media = std::fs::canonicalize(dir.path()).unwrap();
        let allowed = policy(&[&media], &[]);
        let inside = format!("file://{}/show.ts", media.display());
        assert_eq!(allowed.check(&inside), Ok(()));
        assert_eq!(
            allowed.check("file:///etc/passwd"),
            Err(PullRefused::FileOutside)
        );
        let climbing = format!("file://{}/../../etc/passwd", media.display());
        assert_eq!(allowed.check(&climbing), Err(PullRefused::FileOutside));
        assert_eq!(
            allowed.check("file://server/share/a.ts"),
            Err(PullRefused::FileOutside)
        );
    }

    #[test]
    fn the_data_dir_is_never_a_source() {
        let data = tempfile::tempdir().unwrap();
        let data = std::fs::canonicalize(data.path()).unwrap();
        // Even when the operator allows a folder that holds it.
        let parent = data.parent().unwrap().to_path_buf();
        let policy = PullPolicy::new(&data, &[parent], &[]);
        let recording = format!("file://{}/recordings/org/cam/rec.mp4", data.display());
        assert_eq!(policy.check(&recording), Err(PullRefused::FileOutside));
    }

    #[tokio::test]
    async fn links_out_of_an_allowed_folder_are_refused_when_pulled() {
        let dir = tempfile::tempdir().unwrap();
        let media = std::fs::canonicalize(dir.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret.ts");
        std::fs::write(&secret, b"x").unwrap();
        std::os::unix::fs::symlink(&secret, media.join("link.ts")).unwrap();
        std::fs::write(media.join("real.ts"), b"x").unwrap();
        let policy = policy(&[&media], &[]);
        let link = format!("file://{}/link.ts", media.display());
        assert_eq!(policy.check(&link), Ok(()));
        assert_eq!(
            policy.check_before_pull(&link).await,
            Err(PullRefused::FileOutside)
        );
        let real = format!("file://{}/real.ts", media.display());
        assert_eq!(policy.check_before_pull(&real).await, Ok(real.clone()));
        // A missing file and a folder say the same, and nothing more.
        let missing = format!("file://{}/missing.ts", media.display());
        let folder = format!("file://{}/", media.display());
        assert_eq!(
            policy.check_before_pull(&missing).await,
            Err(PullRefused::FileUnavailable)
        );
        assert_eq!(
            policy.check_before_pull(&folder).await,
            Err(PullRefused::FileUnavailable)
        );
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let strict = policy(&[], &[]);
        for uri in [
            "http://127.0.0.1:8099/internal/admin?token=abc",
            "rtsp://10.1.2.3/live",
            "srt://192.168.1.5:9000",
            "rtmp://169.254.169.254/latest",
            "http://[::1]:80/",
            "http://[::ffff:127.0.0.1]/",
            "https://0.0.0.0/",
            "srt://203.0.114.7:9000",
        ] {
            assert!(
                matches!(strict.check(uri), Err(PullRefused::Address(_))),
                "{uri}: {:?}",
                strict.check(uri)
            );
        }
        assert_eq!(strict.check("rtsp://8.8.8.8/live"), Ok(()));
        assert_eq!(strict.check("https://cdn.example.com/live.m3u8"), Ok(()));
        assert!(matches!(
            strict.check("gopher://x"),
            Err(PullRefused::Scheme(_))
        ));

        let lan = policy(&[], &["192.168.1.0/24", "camera.lan"]);
        assert_eq!(lan.check("rtsp://192.168.1.5/live"), Ok(()));
        assert!(lan.check("rtsp://192.168.2.5/live").is_err());
    }

    #[test]
    fn http_is_off_unless_the_operator_enables_it() {
        let data = tempfile::tempdir().unwrap();
        let default = PullPolicy::new(data.path(), &[], &[]);
        assert_eq!(
            default.check("https://cdn.example.com/live.m3u8"),
            Err(PullRefused::HttpDisabled)
        );
        assert_eq!(default.check("rtsp://8.8.8.8/live"), Ok(()));
    }

    #[tokio::test]
    async fn names_that_resolve_to_internal_addresses_are_refused_when_pulled() {
        let strict = policy(&[], &[]);
        // Written as a name, it passes creation; resolved, it is loopback.
        assert_eq!(strict.check("http://localhost:8099/admin"), Ok(()));
        assert!(matches!(
            strict
                .check_before_pull("http://localhost:8099/admin")
                .await,
            Err(PullRefused::Address(_))
        ));
        let allowed = policy(&[], &["localhost"]);
        assert_eq!(
            allowed
                .check_before_pull("http://localhost:8099/admin")
                .await,
            Ok("http://localhost:8099/admin".to_string())
        );
        // Other protocols open the address that was checked.
        let pinned = allowed
            .check_before_pull("rtsp://localhost:8554/live?token=x")
            .await
            .unwrap();
        assert!(
            pinned == "rtsp://127.0.0.1:8554/live?token=x"
                || pinned == "rtsp://[::1]:8554/live?token=x",
            "{pinned}"
        );
    }

    #[test]
    fn srt_sources_call_out_and_never_bind() {
        let strict = policy(&[], &[]);
        // The attacks a probe of the server found, and their spellings.
        for uri in [
            "srt://1.1.1.1:56999?mode=listener&localaddress=0.0.0.0&localport=56996",
            "srt://1.1.1.1:56999?mode=rendezvous&localport=56997",
            "srt://1.1.1.1:56999?mode=%6Cistener",
            "srt://1.1.1.1:56999?mode",
            "srt://1.1.1.1:56999?mode=caller&mode=listener",
        ] {
            assert!(
                matches!(
                    strict.check(uri),
                    Err(PullRefused::SrtMode | PullRefused::SrtParameter(_))
                ),
                "{uri}: {:?}",
                strict.check(uri)
            );
        }
        for (uri, key) in [
            ("srt://1.1.1.1:56999?localport=56998", "localport"),
            (
                "srt://1.1.1.1:56999?mode=caller&localaddress=0.0.0.0",
                "localaddress",
            ),
            ("srt://1.1.1.1:56999?poll-timeout=1", "poll-timeout"),
            ("srt://1.1.1.1:56999?local%70ort=1", "localport"),
        ] {
            assert_eq!(
                strict.check(uri),
                Err(PullRefused::SrtParameter(key.into())),
                "{uri}"
            );
        }
        assert_eq!(
            strict.check("srt://1.1.1.1:9000?mode=caller&streamid=read:cam&passphrase=0123456789&pbkeylen=16&latency=200"),
            Ok(())
        );
        assert_eq!(strict.check("srt://1.1.1.1:9000"), Ok(()));
        // Other schemes' queries go to the remote server: not read here.
        assert_eq!(strict.check("rtsp://1.1.1.1/live?localport=1"), Ok(()));
    }

    #[tokio::test]
    async fn uris_that_parsers_read_differently_are_refused() {
        let strict = policy(&[], &["localhost"]);
        for uri in [
            "rtmp://1.1.1.1/app/key live=1 socks=127.0.0.1:1080",
            "http://1.1.1.1\\@127.0.0.1/",
            "rtsp://1.1.1.1/live\n",
            " srt://1.1.1.1:9000",
        ] {
            assert_eq!(strict.check(uri), Err(PullRefused::Characters), "{uri:?}");
        }
        // What is opened is the URI as parsed and written back.
        assert_eq!(
            strict
                .check_before_pull("rtsp://u:p@1.1.1.1/live?a=%20")
                .await
                .unwrap(),
            "rtsp://u:p@1.1.1.1/live?a=%20"
        );
    }
}
