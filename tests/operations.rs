//! What an operator runs beside the API: `liveproc --version`, the
//! example systemd unit (checked by `systemd-analyze verify`, warnings
//! included), and the demo's printed grpcurl line, run as printed.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::*;

#[test]
fn version_says_the_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_liveproc"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("liveproc {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_example_systemd_unit_verifies_cleanly() {
    let unit = std::fs::read_to_string("docs/liveproc.service").unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/liveproc serve"));
    assert!(std::fs::read_to_string("docs/liveproc.env")
        .unwrap()
        .contains("LIVEPROC_DATA_DIR=/var/lib/liveproc"));
    // As installed, with this build's binary where the unit expects one.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liveproc.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/liveproc", env!("CARGO_BIN_EXE_liveproc")),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (Debian's systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // It exits 0 on settings it ignores: none may be.
    assert!(said.trim().is_empty(), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_grpcurl_line_works_as_printed() {
    let server = Server::builder().flags(&["--demo"]).start();
    let line = server
        .printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("try: "))
        .expect("the demo prints a line to try")
        .to_string();
    // `exec`: the shell becomes grpcurl, so that killing it stops the call.
    let mut grpcurl = Command::new("sh")
        .args(["-c", &format!("exec {line}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = grpcurl.stdout.take().unwrap();
    // WatchStream goes on; its first event (the stream's state) is enough.
    let first = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("\"state\""))
    });
    let found = within(20, "the printed call's first event", first)
        .await
        .unwrap();
    let _ = grpcurl.kill();
    let output = grpcurl.wait_with_output().unwrap();
    assert!(
        found.is_some(),
        "{line}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
