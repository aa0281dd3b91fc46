//! Process control of the server under test: [`Server::builder`] starts
//! the real `liveproc` binary on free ports (a temporary data dir unless
//! one is given), reads its log, stops or kills it; clients connect to it.
//!
//! Media files stay in the data dir, or go to S3 (SeaweedFS) with
//! [`ServerBuilder::object_store`], or for every server of the run when
//! `LIVEPROC_TEST_OBJECTS=s3` (a prefix of the shared test bucket per
//! data dir).
//!
//! The registry is the embedded one, or PostgreSQL: with
//! [`ServerBuilder::database_url`], or for every server of the run when
//! `LIVEPROC_TEST_REGISTRY=postgres` (CI runs the storage tests both
//! ways). Then each data dir gets a database of its own on the shared test
//! server ([`super::postgres::shared`]), and a restart on the same data dir
//! finds the same database.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use liveproc::proto::v1 as pb;
use liveproc::proto::v1::live_processing_client::LiveProcessingClient;
use liveproc::proto::v1::organizations_client::OrganizationsClient;
use tonic::transport::Channel;

use super::authed;

/// The log filter of servers under test.
const DEBUG_LOG: &str = "info,liveproc=debug";

pub const ADMIN_KEY: &str = "lpadmin_test_admin_key_0123456789";

/// A running `liveproc serve` process.
pub struct Server {
    child: Child,
    /// The PostgreSQL registry's URL, when it is not the embedded one.
    pub database_url: Option<String>,
    /// `--object-store`, when media goes to S3.
    pub object_store: Option<String>,
    /// What the server printed to stdout before it was ready.
    pub printed: Vec<String>,
    pub data_dir: PathBuf,
    pub grpc: SocketAddr,
    pub srt: SocketAddr,
    pub rtmp: SocketAddr,
    /// `/metrics`, when started with `--metrics-listen`.
    pub metrics: Option<SocketAddr>,
    /// The RTMPS listener, when started with `--rtmps-listen`.
    pub rtmps: Option<SocketAddr>,
    /// The CA (PEM) that signed the server's certificate, when it serves
    /// TLS: clients made here trust it.
    pub tls_ca: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    log: PathBuf,
}

/// How a test server is started: [`Server::builder`], then `start`.
pub struct ServerBuilder {
    data_dir: Option<PathBuf>,
    admin_key: Option<String>,
    flags: Vec<String>,
    log_filter: String,
    database_url: Option<String>,
    object_store: Option<String>,
    /// The `AWS_*` variables of a private S3 server.
    object_env: Option<Vec<(String, String)>>,
    tls_ca: Option<String>,
    log_dir: Option<PathBuf>,
}

impl ServerBuilder {
    /// Runs on `data_dir`, kept as it is (restarts use this); default: a
    /// new temporary one, removed with the server.
    pub fn data_dir(mut self, data_dir: &Path) -> Self {
        self.data_dir = Some(data_dir.to_path_buf());
        self
    }

    /// `LIVEPROC_ADMIN_KEY` set to `key`, or unset (default: [`ADMIN_KEY`]).
    pub fn admin_key(mut self, key: Option<&str>) -> Self {
        self.admin_key = key.map(String::from);
        self
    }

    /// Extra flags of `liveproc serve`.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// The log filter (default: debug for liveproc; the benchmark runs at
    /// `info`).
    pub fn log_filter(mut self, filter: &str) -> Self {
        self.log_filter = filter.to_string();
        self
    }

    /// Keeps the registry in the PostgreSQL database at `url`.
    pub fn database_url(mut self, url: &str) -> Self {
        self.database_url = Some(url.to_string());
        self
    }

    /// Keeps recordings and clips at `url` on the shared test S3 server.
    pub fn object_store(mut self, url: &str) -> Self {
        self.object_store = Some(url.to_string());
        self
    }

    /// Keeps recordings and clips at `url` on the private S3 server `s3`.
    pub fn object_store_on(mut self, s3: &super::s3::S3Server, url: &str) -> Self {
        self.object_store = Some(url.to_string());
        self.object_env = Some(s3.env());
        self
    }

    /// Starts the server and waits until it is ready.
    /// Serves TLS with the certificate and key files given, which `ca`
    /// (PEM) signed; the test's clients trust `ca`.
    pub fn tls(mut self, ca: &str, cert: &Path, key: &Path) -> Self {
        self.flags.push("--tls-cert".into());
        self.flags.push(cert.display().to_string());
        self.flags.push("--tls-key".into());
        self.flags.push(key.display().to_string());
        self.tls_ca = Some(ca.to_string());
        self
    }

    /// Writes the server's log (its stderr) in `dir` instead of the
    /// system's temp dir: on the disk under test, as a server whose log
    /// shares its data's disk does.
    pub fn log_dir(mut self, dir: &Path) -> Self {
        self.log_dir = Some(dir.to_path_buf());
        self
    }

    pub fn start(self) -> Server {
        let (tmp, data_dir) = match self.data_dir {
            Some(dir) => (None, dir),
            None => {
                let tmp = tempfile::tempdir().expect("temp dir");
                let dir = tmp.path().join("data");
                (Some(tmp), dir)
            }
        };
        let database_url = self
            .database_url
            .or_else(|| postgres_by_default().then(|| database_of(&data_dir)));
        let object_store = self
            .object_store
            .or_else(|| objects_by_default().then(|| objects_of(&data_dir)));
        let mut flags = self.flags.clone();
        let mut env = vec![];
        if let Some(url) = &database_url {
            flags.extend(["--database-url".to_string(), url.clone()]);
        }
        if let Some(url) = &object_store {
            flags.extend(["--object-store".to_string(), url.clone()]);
            env = match &self.object_env {
                Some(env) => env.clone(),
                None => super::s3::shared().env(),
            };
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut server = Server::start_full(
            &data_dir,
            self.log_dir.as_deref(),
            self.admin_key.as_deref(),
            &flags,
            &env,
            &self.log_filter,
        );
        server._tmp = tmp;
        server.tls_ca = self.tls_ca;
        server.database_url = database_url;
        server.object_store = object_store;
        server
    }
}

/// Whether this run keeps every server's media in S3.
pub fn objects_by_default() -> bool {
    std::env::var("LIVEPROC_TEST_OBJECTS").is_ok_and(|v| v == "s3")
}

/// The object store of a data dir: a prefix of its own in the shared
/// test bucket, the same for a restart.
fn objects_of(data_dir: &Path) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static PREFIXES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut prefixes = PREFIXES.get_or_init(Default::default).lock().unwrap();
    prefixes
        .entry(data_dir.to_path_buf())
        .or_insert_with(|| super::s3::shared().store_url(&format!("t{}", rand_suffix())))
        .clone()
}

/// Whether this run keeps every server's registry in PostgreSQL.
pub fn postgres_by_default() -> bool {
    std::env::var("LIVEPROC_TEST_REGISTRY").is_ok_and(|v| v == "postgres")
}

/// The database of a data dir on the shared test PostgreSQL: made for
/// its first server, found again by a restart.
fn database_of(data_dir: &Path) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static DATABASES: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let mut databases = DATABASES.get_or_init(Default::default).lock().unwrap();
    databases
        .entry(data_dir.to_path_buf())
        .or_insert_with(|| super::postgres::shared().new_database_blocking())
        .clone()
}

impl Server {
    /// A server with the defaults: a new temporary data dir, the test
    /// admin key, no extra flags.
    pub fn start() -> Server {
        Server::builder().start()
    }

    pub fn builder() -> ServerBuilder {
        ServerBuilder {
            data_dir: None,
            admin_key: Some(ADMIN_KEY.to_string()),
            flags: vec![],
            log_filter: DEBUG_LOG.to_string(),
            database_url: None,
            object_store: None,
            object_env: None,
            tls_ca: None,
            log_dir: None,
        }
    }

    fn start_full(
        data_dir: &Path,
        log_dir: Option<&Path>,
        admin_key: Option<&str>,
        flags: &[&str],
        env: &[(String, String)],
        log_filter: &str,
    ) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        // Beside the data dir would be on the disk under test (a full
        // tmpfs loses the very lines that tell why).
        let log = log_dir
            .map_or_else(std::env::temp_dir, Path::to_path_buf)
            .join(format!("liveproc-test-{}.log", rand_suffix()));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_liveproc"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--srt-listen", "127.0.0.1:0"])
            .args(["--rtmp-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data_dir)
            .args(flags)
            .env_remove("LIVEPROC_ADMIN_KEY")
            .env("LIVEPROC_LOG", log_filter)
            // Test machines may have little free space; a flag overrides it.
            .env("LIVEPROC_MIN_FREE_DISK_MB", "16")
            .envs(env.iter().map(|(k, v)| (k, v)));
        if let Some(key) = admin_key {
            command.env("LIVEPROC_ADMIN_KEY", key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start liveproc");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut printed = vec![];
        let ready = loop {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("liveproc ready:") => break line,
                Some(Ok(line)) => printed.push(line),
                _ => {
                    let _ = child.kill();
                    panic!(
                        "liveproc exited before it was ready:\n{}",
                        std::fs::read_to_string(&log).unwrap_or_default()
                    );
                }
            }
        };
        // Keep draining stdout so the server never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| -> SocketAddr {
            ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .unwrap_or_else(|| panic!("no {name}= in {ready:?}"))
                .parse()
                .unwrap()
        };
        Server {
            database_url: None,
            object_store: None,
            printed,
            grpc: field("grpc"),
            srt: field("srt"),
            rtmp: field("rtmp"),
            metrics: ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix("metrics="))
                .map(|a| a.parse().unwrap()),
            rtmps: ready
                .split_whitespace()
                .find_map(|w| w.strip_prefix("rtmps="))
                .map(|a| a.parse().unwrap()),
            tls_ca: None,
            child,
            data_dir: data_dir.to_path_buf(),
            _tmp: None,
            log,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's log so far (for assertion messages).
    /// Waits until the log has a line containing every one of `parts`;
    /// returns that line. The log is a file: it is read again every 100 ms.
    pub async fn until_log(&self, parts: &[&str], secs: u64) -> String {
        let find = || {
            self.log()
                .lines()
                .find(|line| parts.iter().all(|p| line.contains(p)))
                .map(str::to_string)
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(line) = find() {
                return line;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no log line with {parts:?} within {secs} s:\n{}",
                self.log()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops with SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> Option<tempfile::TempDir> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "liveproc exit {exit:?}\n{}", self.log());
        self._tmp.take()
    }

    /// Pauses the process (SIGSTOP), as a machine that hangs or a VM
    /// that is frozen; [`Server::resume`] lets it go on.
    pub fn pause(&self) {
        self.signal(rustix::process::Signal::STOP);
    }

    /// Lets a paused process go on (SIGCONT).
    pub fn resume(&self) {
        self.signal(rustix::process::Signal::CONT);
    }

    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).expect("signal the server");
    }

    /// Kills with SIGKILL (no chance to clean up).
    pub fn kill9(mut self) -> Option<tempfile::TempDir> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self._tmp.take()
    }

    pub async fn channel(&self) -> Channel {
        if let Some(ca) = &self.tls_ca {
            return super::tls::channel(self.grpc, ca).await;
        }
        Channel::from_shared(format!("http://{}", self.grpc))
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    pub async fn admin(&self) -> OrganizationsClient<Channel> {
        OrganizationsClient::new(self.channel().await)
    }

    pub async fn cluster(&self) -> liveproc::proto::v1::cluster_client::ClusterClient<Channel> {
        liveproc::proto::v1::cluster_client::ClusterClient::new(self.channel().await)
    }

    pub async fn live(&self) -> LiveProcessingClient<Channel> {
        LiveProcessingClient::new(self.channel().await)
    }

    /// Creates an organization; returns it with its API key.
    pub async fn create_org(&self, name: &str, live_processing: bool) -> pb::Organization {
        self.admin()
            .await
            .create_organization(authed(
                pb::CreateOrganizationRequest {
                    name: name.into(),
                    live_processing,
                },
                ADMIN_KEY,
            ))
            .await
            .expect("create organization")
            .into_inner()
    }

    /// An SRT URL for publishing `stream` from this host.
    pub fn srt_url(&self, stream: &pb::Stream) -> String {
        let key = &stream.ingest.as_ref().unwrap().stream_key;
        format!(
            "srt://{}?streamid=publish:{}:{}&mode=caller",
            self.srt, stream.id, key
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A name part no other call in this run (or a concurrent one) gives.
pub fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{n:x}{}x{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed)
    )
}
