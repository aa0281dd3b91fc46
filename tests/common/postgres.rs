//! A private PostgreSQL server for the tests, from the machine's own
//! PostgreSQL install (Debian's `postgresql`): `initdb` in a temp dir,
//! then `postgres` on a free loopback port, as the `postgres` user when the
//! tests run as root (PostgreSQL refuses root). Password authentication
//! (SCRAM) is on, so that URLs carry a secret the logs must never show.
//!
//! [`shared`] is one server per test process with a new database per
//! test ([`PgServer::new_database`]); [`PgServer::start`] is a server of
//! the test's own (to stop and restart it). A server dies with the test
//! process (parent-death signal), and a later run removes the folders of
//! servers whose process is gone.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use sqlx::Connection;

/// The password of the `postgres` role in test servers.
pub const PG_PASSWORD: &str = "pg-test-secret-7d1f";

const FOLDER_PREFIX: &str = "liveproc-pg-";

/// A running test PostgreSQL server.
pub struct PgServer {
    dir: PathBuf,
    port: u16,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

/// The server shared by the tests of this process.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(|| super::start_for_the_process(PgServer::start))
}

/// The folder of PostgreSQL's programs: the newest version installed.
fn bin_dir() -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect(
        "PostgreSQL is not installed (/usr/lib/postgresql/*/bin/initdb): run scripts/install-deps.sh",
    )
}

/// uid and gid of the `postgres` user, when running as root.
fn postgres_owner() -> Option<(u32, u32)> {
    if rustix::process::getuid().as_raw() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("no postgres user (install PostgreSQL: scripts/install-deps.sh)");
    let fields: Vec<&str> = line.split(':').collect();
    Some((fields[2].parse().unwrap(), fields[3].parse().unwrap()))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Removes the folders of test servers whose process has ended.
fn remove_stale_folders() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(pid) = name
            .strip_prefix(FOLDER_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl PgServer {
    /// Makes a new cluster and starts it.
    pub fn start() -> PgServer {
        remove_stale_folders();
        let owner = postgres_owner();
        let dir = std::env::temp_dir().join(format!(
            "{FOLDER_PREFIX}{}-{}",
            std::process::id(),
            super::rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        chown(&dir, owner);
        let password_file = dir.join("password");
        std::fs::write(&password_file, PG_PASSWORD).unwrap();
        chown(&password_file, owner);
        let mut initdb = Command::new(bin_dir().join("initdb"));
        initdb
            .arg("-D")
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", password_file.display()))
            .stdout(Stdio::null());
        if let Some((uid, gid)) = owner {
            initdb.uid(uid).gid(gid);
        }
        let status = initdb.status().expect("run initdb");
        assert!(status.success(), "initdb failed: {status}");
        let mut server = PgServer {
            dir,
            port: super::port_outside_ephemeral_range(),
            owner,
            child: None,
        };
        server.run();
        server
    }

    /// Starts `postgres` on the cluster and waits until it accepts
    /// connections (its own log line says so).
    fn run(&mut self) {
        let log_path = self.dir.join("postgres.log");
        let mut command = Command::new(bin_dir().join("postgres"));
        command
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            // Test data: speed over durability of the database itself.
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(["-c", "max_connections=300"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some((uid, gid)) = self.owner {
            command.uid(uid).gid(gid);
        }
        // SAFETY: only an async-signal-safe system call between fork and
        // exec.
        unsafe {
            command.pre_exec(|| {
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::QUIT,
                ))
                .map_err(std::io::Error::from)
            });
        }
        let mut child = command.spawn().expect("start postgres");
        let stderr = child.stderr.take().unwrap();
        let (ready, is_ready) = mpsc::channel();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .unwrap();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(log, "{line}");
                if line.contains("database system is ready to accept connections") {
                    let _ = ready.send(());
                }
            }
        });
        is_ready
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "postgres did not start; its log: {}",
                    std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
                )
            });
        self.child = Some(child);
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = rustix::process::Pid::from_child(&child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::INT);
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again, on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The URL of database `name`, with the password.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://postgres:{PG_PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        )
    }

    /// A new empty database; returns its URL.
    pub async fn new_database(&self) -> String {
        let name = format!("t_{}", super::rand_suffix());
        let mut admin = sqlx::PgConnection::connect(&self.url("postgres"))
            .await
            .expect("connect to the test postgres");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE template0"
        )))
        .execute(&mut admin)
        .await
        .expect("create a test database");
        admin.close().await.ok();
        self.url(&name)
    }

    /// [`new_database`](Self::new_database) for code that is not async.
    pub fn new_database_blocking(&self) -> String {
        std::thread::scope(|s| {
            s.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(self.new_database())
            })
            .join()
            .unwrap()
        })
    }
}

/// Every row of every table of the database at `url`, as text.
pub async fn dump(url: &str) -> String {
    use sqlx::Row;
    let mut db = sqlx::PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&mut db)
    .await
    .unwrap();
    let mut out = String::new();
    for table in tables {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT t::text AS row FROM \"{table}\" t"
        )))
        .fetch_all(&mut db)
        .await
        .unwrap();
        for row in rows {
            out.push_str(&row.get::<String, _>("row"));
            out.push('\n');
        }
    }
    out
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
