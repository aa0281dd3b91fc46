//! TLS on the one address (`--tls-cert`, `--tls-key`) with a CA and
//! certificates made at test time: gRPC (tonic and grpcurl with
//! `-cacert`), grpc-web and HTTP over HTTP/2 and HTTP/1.1 as ALPN
//! chooses (curl), signed URLs in https, RTMPS with the same certificate
//! (ffmpeg publishing), the certificate replaced on disk and on SIGHUP
//! without a restart, and the dashboard's stream page in Chromium over a
//! single HTTP/2 connection.

mod browser;
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::tls::TestCa;
use common::*;
use liveproc::proto::v1 as pb;

/// Starts a TLS server with a fresh CA and certificate in `dir`.
fn tls_server(dir: &Path, ca: &TestCa, flags: &[&str]) -> Server {
    let (cert, key) = ca.issue().write(dir);
    Server::builder()
        .tls(&ca.pem, &cert, &key)
        .flags(flags)
        .start()
}

fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "10"])
        .args(args)
        .output()
        .expect("curl is installed (make deps)")
}

/// grpcurl on the PATH, or the one the test tools install.
fn grpcurl() -> Command {
    let installed = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/grpcurl");
    if installed.is_file() {
        Command::new(installed)
    } else {
        Command::new("grpcurl")
    }
}

/// The value of the sample `name{labels}` in a scrape of `/metrics`.
const TLS_H2: &str = r#"liveproc_http_connections_total{transport="tls",alpn="h2"}"#;
const TLS_H1: &str = r#"liveproc_http_connections_total{transport="tls",alpn="http/1.1"}"#;
const OPEN: &str = "liveproc_http_connections_open ";
const UNUSED: &str = "liveproc_http_connections_unused_total ";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_grpc_web_http_and_rtmps_are_served_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("liveproc test CA");
    let ca_file = ca.write(dir.path());
    let ca_arg = ca_file.to_str().unwrap();
    let server = tls_server(
        dir.path(),
        &ca,
        &[
            "--rtmps-listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let base = format!("https://127.0.0.1:{}", server.grpc.port());

    // gRPC over TLS (tonic, trusting the CA alone).
    let org = server.create_org("Acme", true).await;
    let stream = create_stream(&server, &org.api_key, "cam", Some(thumbnails_every_10s()))
        .await
        .unwrap();
    let ingest = stream.ingest.unwrap();
    let rtmps = server.rtmps.expect("rtmps= in the ready line");
    assert_eq!(ingest.rtmps_server, format!("rtmps://{rtmps}/live"));
    assert_eq!(
        ingest.rtmps_url,
        format!("rtmps://{rtmps}/live/{}", ingest.stream_key)
    );
    assert_eq!(ingest.rtmp_stream_key, ingest.stream_key);
    // Signed URLs follow the scheme.
    let signed = sign(&server, &org.api_key, "/v1/streams/cam/thumbnail.jpg", 60).await;
    assert!(
        signed.url.starts_with(&format!("{base}/")),
        "{}",
        signed.url
    );

    // grpcurl with -cacert; without TLS it gets nothing.
    let auth = format!("authorization: Bearer {}", org.api_key);
    let address = format!("127.0.0.1:{}", server.grpc.port());
    let listed = grpcurl()
        .args(["-cacert", ca_arg, "-H", &auth])
        .args([&address, "liveproc.v1.LiveProcessing/ListStreams"])
        .output()
        .expect("grpcurl is installed (make test-tools)");
    let said = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && said.contains("\"cam\""),
        "{said}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let plaintext = grpcurl()
        .args(["-plaintext", "-max-time", "5", "-H", &auth])
        .args([&address, "liveproc.v1.LiveProcessing/ListStreams"])
        .output()
        .unwrap();
    assert!(!plaintext.status.success(), "plaintext gRPC was served");
    // A client that does not trust our CA refuses the certificate.
    let stranger = TestCa::new("another CA");
    assert!(
        common::tls::served_certificate(server.grpc, &stranger.pem)
            .await
            .is_err(),
        "a certificate of another CA was accepted"
    );

    // HTTP (the dashboard) over HTTP/2 and HTTP/1.1, as ALPN settles.
    let h1_before = metric(&server, TLS_H1).await;
    for (flag, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let out = curl(&[
            flag,
            "--cacert",
            ca_arg,
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code}",
            &format!("{base}/"),
        ]);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            said,
            format!("{version} 200"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(metric(&server, TLS_H1).await > h1_before);
    assert!(
        metric(&server, TLS_H2).await >= 2.0,
        "tonic and curl over h2"
    );
    // Plain HTTP to the TLS address gets no answer.
    let out = curl(&[&format!("http://127.0.0.1:{}/", server.grpc.port())]);
    assert!(!out.status.success(), "plain HTTP was answered");

    // grpc-web over HTTP/1.1 and TLS: the health check, with its trailer.
    let frame = dir.path().join("empty-frame");
    std::fs::write(&frame, [0u8; 5]).unwrap();
    let out = curl(&[
        "--http1.1",
        "--cacert",
        ca_arg,
        "-H",
        "content-type: application/grpc-web+proto",
        "-H",
        "x-grpc-web: 1",
        "--data-binary",
        &format!("@{}", frame.display()),
        &format!("{base}/grpc.health.v1.Health/Check"),
    ]);
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(body.contains("grpc-status:0"), "{body:?}");

    // RTMPS: ffmpeg publishes with the same certificate; a thumbnail comes.
    let mut publisher = common::rtmp::ffmpeg_rtmp_publish(&ingest.rtmps_url, test_ts());
    let thumbnail = first_thumbnail(&server, &org.api_key, "cam").await;
    let _ = publisher.kill();
    let _ = publisher.wait();
    let image = image::load_from_memory(&thumbnail.data).unwrap().to_rgb8();
    assert_eq!(image.width(), thumbnail.width);
    assert!(spread(image.as_raw()) > 20.0, "the thumbnail looks blank");
    let connected = server.until_log(&["publisher connected"], 5).await;
    assert!(connected.contains("publisher=RTMP"), "{connected}");
    assert!(
        !server.log().contains("malformed FLV"),
        "ffmpeg's tags were refused:\n{}",
        server.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_certificate_is_served_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("liveproc test CA");
    let first = ca.issue();
    let (cert, key) = first.write(dir.path());
    let server = Server::builder().tls(&ca.pem, &cert, &key).start();
    let served = || common::tls::served_certificate(server.grpc, &ca.pem);
    assert_eq!(served().await.unwrap(), first.der);
    // A channel opened before the change goes on after it.
    let org = server.create_org("Acme", true).await;
    let mut live = server.live().await;

    // A broken key is not taken: the certificate in use stays.
    std::fs::write(&key, "not a key").unwrap();
    server
        .until_log(&["TLS certificate not reloaded", "server.key"], 10)
        .await;
    assert_eq!(served().await.unwrap(), first.der);

    // A renewal (both files replaced) is served from the next handshake.
    let renewed = ca.issue();
    renewed.write(dir.path());
    server
        .until_log(&["TLS certificate reloaded", "the files changed"], 10)
        .await;
    assert_eq!(served().await.unwrap(), renewed.der);
    live.list_streams(authed(pb::ListStreamsRequest::default(), &org.api_key))
        .await
        .expect("a channel from before the reload still works");

    // SIGHUP reloads too, and does not stop the server.
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    server
        .until_log(&["TLS certificate reloaded", "SIGHUP"], 10)
        .await;
    assert_eq!(served().await.unwrap(), renewed.der);
}

/// The stream page makes many calls at once (grpc-web, thumbnails, the
/// replay's playlist and segments): over HTTP/1.1 a browser opens up to 6
/// connections per origin and queues the rest; over TLS with ALPN h2 they
/// all share one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_loads_the_stream_page_over_one_http2_connection() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("liveproc test CA");
    let issued = ca.issue();
    let (cert, key) = issued.write(dir.path());
    let server = Server::builder()
        .tls(&ca.pem, &cert, &key)
        .flags(&[
            "--metrics-listen",
            "127.0.0.1:0",
            "--rtmps-listen",
            "127.0.0.1:0",
        ])
        .start();
    let org = server.create_org("Acme", true).await;
    let processing = pb::ProcessingOptions {
        replay: replay_options(60).replay,
        ..thumbnails_every_10s()
    };
    let stream = create_stream(&server, &org.api_key, "cam", Some(processing))
        .await
        .unwrap();
    let mut publisher = srt_publish(&server.srt_url(&stream), test_ts_25s());
    first_thumbnail(&server, &org.api_key, "cam").await;

    // Chromium trusts this certificate (by its key) and nothing else new.
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        issued.spki_sha256
    );
    let browser = browser::Browser::start_with(1280, 900, &[trust]).await;
    let before = metric(&server, TLS_H2).await + metric(&server, TLS_H1).await;
    let (open_before, unused_before) = (metric(&server, OPEN).await, metric(&server, UNUSED).await);
    let page = format!("https://localhost:{}/", server.grpc.port());
    browser
        .open_fresh(&format!("{page}#key={}", org.api_key))
        .await;
    browser
        .client
        .goto(&format!("{page}#/streams/cam"))
        .await
        .unwrap();
    let video = "document.querySelector('.player video')";
    browser
        .until(
            "the replay playing",
            &format!("{video} && {video}.currentTime > 1"),
        )
        .await;
    browser
        .until(
            "the thumbnail shown",
            "[...document.images].some(i => i.complete && i.naturalWidth > 0)",
        )
        .await;
    // Where to publish: RTMPS, and OBS's server is the encrypted one.
    let ingest = stream.ingest.clone().unwrap();
    for (row, want) in [
        ("RTMPS", &ingest.rtmps_url),
        ("OBS Server", &ingest.rtmps_server),
        ("OBS Stream Key", &ingest.rtmp_stream_key),
    ] {
        let shown = browser.text(&format!("[data-ingest='{row}'] code")).await;
        assert_eq!(&shown, want, "{row}");
    }
    let protocols = browser
        .eval(
            "performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))\
             .map(e => e.nextHopProtocol)",
        )
        .await;
    let protocols: Vec<String> = serde_json::from_value(protocols).unwrap();
    let after = metric(&server, TLS_H2).await + metric(&server, TLS_H1).await;
    browser.close().await;
    // Chromium may open a spare connection it never uses (a preconnect):
    // once every connection of the browser has closed, those that carried
    // no request are counted apart.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&server, OPEN).await > open_before {
        assert!(
            tokio::time::Instant::now() < deadline,
            "Chromium's connections stay open"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let unused = metric(&server, UNUSED).await - unused_before;
    let _ = publisher.kill();
    let _ = publisher.wait();
    assert!(
        protocols.len() >= 8,
        "the page made {} requests: {protocols:?}",
        protocols.len()
    );
    assert!(
        protocols.iter().all(|p| p == "h2"),
        "not all over HTTP/2: {protocols:?}"
    );
    eprintln!(
        "stream page: {} requests over {} TLS connection(s), {unused} of them unused",
        protocols.len(),
        after - before
    );
    assert_eq!(
        after - before - unused,
        1.0,
        "Chromium's {} requests went over {} TLS connections",
        protocols.len(),
        after - before - unused
    );
}
