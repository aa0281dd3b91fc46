//! HTTP as the tests call it: GET with an API key, signed URLs, ffmpeg
//! decoding an HLS playlist, and one sample of `/metrics`.

use std::process::Command;

use liveproc::proto::v1 as pb;

use super::{authed, Server};

/// The value of the metric sample that starts with `sample` (name and
/// labels) on the server's `/metrics` (started with `--metrics-listen`);
/// 0 when it is not there yet.
pub async fn metric(server: &Server, sample: &str) -> f64 {
    let addr = server.metrics.expect("started with --metrics-listen");
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The server's HTTP base URL.
pub fn base(server: &Server) -> String {
    format!("http://{}", server.grpc)
}

/// GET `url` (a path of the server, or a full URL), with the API key when
/// given.
pub async fn get(server: &Server, url: &str, key: Option<&str>) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", base(server))
    };
    let mut request = reqwest::Client::new().get(url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("the server answers HTTP")
}

/// A signed URL of `path` (`SignUrl`).
pub async fn sign(server: &Server, key: &str, path: &str, ttl_seconds: u32) -> pb::SignUrlResponse {
    server
        .live()
        .await
        .sign_url(authed(
            pb::SignUrlRequest {
                path: path.into(),
                ttl_seconds,
            },
            key,
        ))
        .await
        .expect("SignUrl")
        .into_inner()
}

/// Decodes every frame `url` gives (an HLS playlist, with `key` in a
/// header when given); returns ffmpeg's error output and the frames seen.
pub fn decode_hls(url: &str, key: Option<&str>) -> (String, u64) {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error", "-nostdin"]);
    if let Some(key) = key {
        command.args(["-headers", &format!("Authorization: Bearer {key}\r\n")]);
    }
    let out = command
        .args(["-live_start_index", "0", "-i", url])
        // Every decoded frame, whatever its timestamp: each file of a
        // session playlist has its own timeline.
        .args(["-map", "0:v:0", "-fps_mode", "passthrough"])
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg is installed");
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!("\nffmpeg exited with {}", out.status));
    }
    let frames = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .count() as u64;
    (errors, frames)
}
