//! The HTTP routes against the real server with media over SRT: the
//! thumbnail URL decodes at the stream's size, ffmpeg plays the replay
//! playlist (with the key in a header, and signed) from the oldest GOP,
//! recordings answer byte ranges exactly, a clip's share link is a
//! playable MP4, a session's recordings play as one VOD playlist,
//! thumbnails come re-encoded in the formats a stream does not make,
//! stalled downloads hold no media and slow no ingest, and credentials
//! that are missing, tampered with, expired or another organization's are
//! refused.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;

fn thumbnail_options() -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: thumbnails_every_10s().thumbnail,
        replay: replay_options(60).replay,
        recording: recording_options(0).recording,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnail_urls_with_a_key_or_a_signed_url_and_nothing_else() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", Some(thumbnail_options()))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let made = first_thumbnail(&server, key, "cam").await;
    let path = "/v1/streams/cam/thumbnail.jpg";

    // With the key: the latest thumbnail, a JPEG at the stream's size.
    let response = get(&server, path, Some(key)).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "image/jpeg");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("max-age="));
    let etag = headers["etag"].to_str().unwrap().to_string();
    let body = response.bytes().await.unwrap();
    let image = image::load_from_memory_with_format(&body, image::ImageFormat::Jpeg)
        .expect("a JPEG that decodes");
    let size = get_stream(&server, key, "cam")
        .await
        .unwrap()
        .ingest_stats
        .expect("ingest stats");
    assert_eq!((image.width(), image.height()), (size.width, size.height));
    assert_eq!((made.width, made.height), (size.width, size.height));
    assert!(
        spread(image.to_rgb8().as_raw()) > 20.0,
        "the thumbnail looks blank"
    );
    // The same again is "not modified".
    let again = reqwest::Client::new()
        .get(format!("{}{path}", base(&server)))
        .bearer_auth(key)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    // Compared weakly, as RFC 9110 asks of If-None-Match (a CDN may
    // weaken a tag).
    let weak = reqwest::Client::new()
        .get(format!("{}{path}", base(&server)))
        .bearer_auth(key)
        .header("if-none-match", format!("W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), 304);

    // The same thumbnail in the formats the stream does not make:
    // re-encoded, at the same size, alike (PNG is lossless; WebP is a
    // second lossy generation). Compared by luma: the server's JPEG
    // decoder and the image crate's upsample its 4:2:0 chroma each their
    // own way.
    let jpeg = image.to_rgb8();
    for (extension, format, content_type, min_db) in [
        ("png", image::ImageFormat::Png, "image/png", 40.0),
        ("webp", image::ImageFormat::WebP, "image/webp", 35.0),
    ] {
        let path = format!("/v1/streams/cam/thumbnail.{extension}");
        let response = get(&server, &path, Some(key)).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type);
        let tag = response.headers()["etag"].to_str().unwrap().to_string();
        assert_ne!(tag, etag, "each format has its own tag");
        let body = response.bytes().await.unwrap();
        let converted = image::load_from_memory_with_format(&body, format)
            .unwrap_or_else(|e| panic!("{path} does not decode: {e}"))
            .to_rgb8();
        assert_eq!(converted.dimensions(), jpeg.dimensions(), "{path}");
        let db = luma_psnr(converted.as_raw(), jpeg.as_raw());
        eprintln!("{path} vs the JPEG: {db:.1} dB luma");
        assert!(db >= min_db, "{path} vs the JPEG: {db:.1} dB luma");
    }

    // A route that is not one.
    assert_eq!(
        get(&server, "/v1/streams/cam/nothing.jpg", Some(key))
            .await
            .status(),
        404
    );

    // No credentials, an unknown key, the admin key.
    assert_eq!(get(&server, path, None).await.status(), 401);
    assert_eq!(get(&server, path, Some("lp_not_a_key")).await.status(), 401);
    // Another organization: the same answer as a stream that is not there.
    let theirs = get(&server, path, Some(&other.api_key)).await;
    assert_eq!(theirs.status(), 404);
    let missing = get(&server, "/v1/streams/nope/thumbnail.jpg", Some(key)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(
        theirs.text().await.unwrap().replace("cam", "nope"),
        missing.text().await.unwrap()
    );

    // A signed URL works without the key...
    let signed = sign(&server, key, path, 600).await;
    assert!(signed.url.starts_with(&base(&server)), "{}", signed.url);
    let response = get(&server, &signed.url, None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
    // ... for its path only, and not once tampered with.
    let elsewhere = signed.url.replace("thumbnail.jpg", "motion.mp4");
    assert_eq!(get(&server, &elsewhere, None).await.status(), 403);
    let mut tampered = signed.url.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(get(&server, &tampered, None).await.status(), 403);
    let other_org = signed.url.replace(&org.id, &other.id);
    assert_eq!(get(&server, &other_org, None).await.status(), 403);
    // Another organization cannot sign this stream's URL.
    let refused = server
        .live()
        .await
        .sign_url(authed(
            pb::SignUrlRequest {
                path: path.into(),
                ttl_seconds: 60,
            },
            &other.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");
    // Out-of-range lifetimes and paths that are not media routes.
    for (path, ttl, field) in [
        (path, 604_801, "ttl_seconds"),
        ("/etc/passwd", 60, "path"),
        ("/v1/streams/cam/../../admin.key", 60, "path"),
    ] {
        let status = server
            .live()
            .await
            .sign_url(authed(
                pb::SignUrlRequest {
                    path: path.into(),
                    ttl_seconds: ttl,
                },
                key,
            ))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{path}");
        assert!(status.message().contains(field), "{status:?}");
    }

    // An expired URL: signed for one second, used once that second passed.
    let short = sign(&server, key, path, 1).await;
    let expires = short.expire_time.unwrap().seconds;
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        <= expires
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(get(&server, &short.url, None).await.status(), 401);

    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
}

/// The first video frame of `url` (from its oldest segment), as RGB.
fn first_frame(url: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-nostdin",
            "-live_start_index",
            "0",
            "-i",
            url,
        ])
        .args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_the_replay_playlist_from_the_oldest_gop() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let source = test_ts_25s();
    let stream = create_stream(&server, key, "cam", Some(thumbnail_options()))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), source);
    watch.until_state(StreamState::Live, 20).await;
    let path = "/v1/streams/cam/replay.m3u8";

    // While live: a live playlist (no end), GOPs with their times.
    first_thumbnail(&server, key, "cam").await;
    let live = loop {
        let response = get(&server, path, Some(key)).await;
        if response.status() == 200 {
            break response;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        live.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let text = live.text().await.unwrap();
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(text.contains("#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
    assert!(!text.contains("#EXT-X-ENDLIST"), "{text}");

    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(StreamState::Ended, 20).await;

    // The whole window (the whole session: it is shorter), ended.
    let response = get(&server, path, Some(key)).await;
    let text = response.text().await.unwrap();
    assert!(text.contains("#EXT-X-ENDLIST"), "{text}");
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:"), "{text}");
    let segments = text.lines().filter(|l| l.ends_with(".ts")).count();
    assert!(
        segments >= 20,
        "{segments} segments for 25 s of 1 s GOPs:\n{text}"
    );

    // ffmpeg decodes all of it cleanly, with the key in a header...
    let url = format!("{}{path}", base(&server));
    let (errors, frames) = decode_hls(&url, Some(key));
    assert!(errors.trim().is_empty(), "ffmpeg: {errors}");
    let expected = 25.0 * SOURCE_FPS;
    assert!(
        (frames as f64 - expected).abs() <= SOURCE_FPS,
        "{frames} frames, expected about {expected}"
    );
    // ... and signed: every segment URL carries its own token.
    let signed = sign(&server, key, path, 600).await;
    let playlist = get(&server, &signed.url, None).await.text().await.unwrap();
    for segment in playlist.lines().filter(|l| l.contains(".ts")) {
        assert!(segment.contains("?token="), "{segment}");
    }
    let (errors, signed_frames) = decode_hls(&signed.url, None);
    assert!(errors.trim().is_empty(), "ffmpeg (signed): {errors}");
    assert_eq!(signed_frames, frames);
    let probe = probe_av_file(Path::new(&signed.url));
    probe.assert_audio_and_video("replay playlist", 25.0, 1.0);

    // Seeking to the window's start gives the oldest GOP: the session's
    // first frame.
    let frame = first_frame(&signed.url);
    let db = psnr(&frame, &source_frame_rgb(source, 0));
    assert!(db >= 30.0, "oldest frame vs source frame 0: {db:.1} dB");

    // Without credentials, no playlist.
    assert_eq!(get(&server, path, None).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recordings_answer_byte_ranges_and_clip_links_play() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    let key = org.api_key.as_str();
    publish_session(&server, key, "cam", Some(thumbnail_options()), test_ts()).await;
    let recording = list_recordings(&server, key, "cam")
        .await
        .into_iter()
        .next()
        .expect("a recording");
    let whole = download_recording(&server, key, &recording.id, 0).await;
    let path = format!("/v1/recordings/{}.mp4", recording.id);
    let url = format!("{}{path}", base(&server));

    let full = get(&server, &path, Some(key)).await;
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-type"], "video/mp4");
    let etag = full.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(full.bytes().await.unwrap().as_ref(), whole.as_slice());

    let client = reqwest::Client::new();
    let part = client
        .get(&url)
        .bearer_auth(key)
        .header("range", "bytes=100-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-1099/{}", whole.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap().as_ref(), &whole[100..1100]);
    let tail = client
        .get(&url)
        .bearer_auth(key)
        .header("range", "bytes=-500")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.status(), 206);
    assert_eq!(
        tail.bytes().await.unwrap().as_ref(),
        &whole[whole.len() - 500..]
    );
    let head = client.head(&url).bearer_auth(key).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        whole.len().to_string().as_str()
    );
    let unchanged = client
        .get(&url)
        .bearer_auth(key)
        .header("if-none-match", format!("\"other\", W/{etag}"))
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["x-content-type-options"], "nosniff");
    // An error is not sniffed into a page either.
    let missing = get(&server, "/v1/recordings/rec_nope.mp4", Some(key)).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    assert_eq!(
        get(&server, &path, Some(&other.api_key)).await.status(),
        404
    );

    // A clip's share link: a signed URL anyone can open.
    let clip = create_clip(&server, key, "cam", 5, "the goal").await;
    let link = sign(&server, key, &format!("/v1/clips/{}.mp4", clip.id), 3600).await;
    let response = get(&server, &link.url, None).await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    let probe = probe_av(&bytes, "clip.mp4");
    probe.assert_audio_and_video("shared clip", secs(&clip.duration), 0.5);
    let theirs = format!("/v1/clips/{}.mp4", clip.id);
    assert_eq!(
        get(&server, &theirs, Some(&other.api_key)).await.status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sessions_recordings_play_as_one_vod_playlist() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    let key = org.api_key.as_str();
    publish_session(&server, key, "cam", Some(recording_options(3)), test_ts()).await;
    // The files close a moment after the session ends.
    let recordings = loop {
        let recordings = list_recordings(&server, key, "cam").await;
        if recordings
            .iter()
            .all(|r| r.state() == pb::RecordingState::Complete)
        {
            break recordings;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(recordings.len() >= 3, "{recordings:?}");
    let session = recordings[0].session_id.clone();
    assert!(session.starts_with("ses_"), "{session:?}");
    assert!(recordings.iter().all(|r| r.session_id == session));
    let total: f64 = recordings.iter().map(|r| secs(&r.duration)).sum();

    let path = format!("/v1/streams/cam/sessions/{session}/recordings.m3u8");
    let text = get(&server, &path, Some(key)).await.text().await.unwrap();
    assert!(text.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{text}");
    assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    assert_eq!(text.matches("#EXT-X-MAP:").count(), recordings.len());
    let listed: f64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| l.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!(
        (listed - total).abs() < 0.01,
        "{listed} s listed, {total} s recorded"
    );

    // Each file as a player reads it: its init segment and its media
    // by the playlist's byte ranges, which together decode as the
    // whole file.
    let client = reqwest::Client::new();
    let ranges = byte_ranges(&text);
    assert_eq!(ranges.len(), recordings.len());
    for (recording, (url, init, media)) in recordings.iter().zip(&ranges) {
        assert_eq!(url, &format!("/v1/recordings/{}.mp4", recording.id));
        let mut bytes = Vec::new();
        for range in [init, media] {
            let part = client
                .get(format!("{}{url}", base(&server)))
                .bearer_auth(key)
                .header("range", range)
                .send()
                .await
                .unwrap();
            assert_eq!(part.status(), 206, "{range}");
            bytes.extend_from_slice(&part.bytes().await.unwrap());
        }
        let probe = probe_av(&bytes, "segment.mp4");
        probe.assert_audio_and_video(&recording.id, secs(&recording.duration), 0.2);
    }

    // Signed, every file URL carries its own token, and ffmpeg reads the
    // playlist without an error, both tracks.
    let signed = sign(&server, key, &path, 600).await;
    let playlist = get(&server, &signed.url, None).await.text().await.unwrap();
    for url in playlist.lines().filter(|l| l.contains(".mp4")) {
        assert!(url.contains("?token="), "{url}");
    }
    let (errors, frames) = decode_hls(&signed.url, None);
    assert!(errors.trim().is_empty(), "ffmpeg: {errors}");
    assert!(frames > 0);
    let probe = probe_av_file(Path::new(&signed.url));
    assert!(probe.video.is_some() && probe.audio.is_some(), "{probe:?}");

    // Another organization's, or no such session: not found.
    assert_eq!(
        get(&server, &path, Some(&other.api_key)).await.status(),
        404
    );
    let missing = "/v1/streams/cam/sessions/ses_000000000000000000/recordings.m3u8";
    assert_eq!(get(&server, missing, Some(key)).await.status(), 404);
}

/// Each segment of a fragmented-MP4 playlist: its URL, and the `Range`
/// headers of its init segment and of its media.
fn byte_ranges(playlist: &str) -> Vec<(String, String, String)> {
    let range = |length: &str, offset: &str| {
        let (length, offset): (u64, u64) = (length.parse().unwrap(), offset.parse().unwrap());
        format!("bytes={offset}-{}", offset + length - 1)
    };
    let mut out = Vec::new();
    let mut init = String::new();
    let mut media = String::new();
    for line in playlist.lines() {
        if let Some(map) = line.strip_prefix("#EXT-X-MAP:") {
            let (_, spec) = map.split_once("BYTERANGE=\"").unwrap();
            let (length, offset) = spec.trim_end_matches('"').split_once('@').unwrap();
            init = range(length, offset);
        } else if let Some(spec) = line.strip_prefix("#EXT-X-BYTERANGE:") {
            let (length, offset) = spec.split_once('@').unwrap();
            media = range(length, offset);
        } else if !line.starts_with('#') {
            out.push((line.to_string(), init.clone(), media.clone()));
        }
    }
    out
}

/// Resident memory of process `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// A client that asks for `path` and then reads almost nothing: a 4 KiB
/// receive window, and only the first bytes of the answer read.
fn stalled_download(server: &Server, path: &str, key: &str) -> std::net::TcpStream {
    use std::io::{Read, Write};
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.grpc.into()).unwrap();
    let mut stream: std::net::TcpStream = socket.into();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: liveproc\r\nauthorization: Bearer {key}\r\n\r\n"
    )
    .unwrap();
    let mut first = [0u8; 1024];
    let n = stream.read(&mut first).unwrap();
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&first[..n])
    );
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_downloads_hold_no_media_and_do_not_slow_ingest() {
    const STALLED: usize = 16;
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    // A recording far larger than the kernel's socket buffers.
    let big = create_stream(&server, key, "big", Some(recording_options(0)))
        .await
        .unwrap();
    push_file(&server, &big, heavy_ts()).await;
    let recording = loop {
        let recordings = list_recordings(&server, key, "big").await;
        if let Some(done) = recordings
            .into_iter()
            .find(|r| r.state() == pb::RecordingState::Complete)
        {
            break done;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(recording.size_bytes > 40 << 20, "{recording:?}");

    // A live stream over SRT while the downloads stall.
    let stream = create_stream(&server, key, "cam", Some(thumbnail_options()))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let ffmpeg = srt_publish(&server.srt_url(&stream), test_ts());
    watch.until_state(StreamState::Live, 20).await;
    first_thumbnail(&server, key, "cam").await;
    let before = rss_bytes(server.pid());

    let path = format!("/v1/recordings/{}.mp4", recording.id);
    let stalled: Vec<_> = (0..STALLED)
        .map(|_| stalled_download(&server, &path, key))
        .collect();

    // The live session gets every frame while the downloads stall.
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    let stats = get_stream(&server, key, "cam")
        .await
        .unwrap()
        .ingest_stats
        .expect("ingest stats");
    assert_eq!(
        stats.video_frames as f64,
        10.0 * SOURCE_FPS,
        "frames lost while downloads stalled"
    );

    // Serving them holds about nothing per client: the files are read as
    // the clients take them, not into memory.
    let grown = rss_bytes(server.pid()).saturating_sub(before);
    let held_if_buffered = STALLED as u64 * recording.size_bytes;
    eprintln!(
        "{STALLED} stalled downloads of {} MiB: RSS {:+} KiB",
        recording.size_bytes >> 20,
        grown >> 10
    );
    assert!(
        grown < 32 << 20,
        "RSS grew {} MiB with {STALLED} stalled downloads ({} MiB if buffered)",
        grown >> 20,
        held_if_buffered >> 20
    );
    drop(stalled);
    let whole = get(&server, &path, Some(key)).await.bytes().await.unwrap();
    assert_eq!(whole.len() as u64, recording.size_bytes);
}

/// Open file descriptors and threads of process `pid`.
fn fds_and_threads(pid: u32) -> (usize, usize) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    (fds, threads)
}

/// One slow client: connects, sends `start`, then one more byte every
/// 300 ms, as a slowloris attack does, until the server closes the
/// connection; returns how long it was held open.
async fn slow_client(server: std::net::SocketAddr, start: &'static [u8]) -> std::time::Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let began = std::time::Instant::now();
    let mut socket = tokio::net::TcpStream::connect(server).await.unwrap();
    let _ = socket.write_all(start).await;
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            read = socket.read(&mut buf) => match read {
                // Closed by the server (an error answer first, or not).
                Ok(0) | Err(_) => return began.elapsed(),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(std::time::Duration::from_millis(300)) => {
                if start.is_empty() {
                    continue;
                }
                if socket.write_all(b"a").await.is_err() {
                    return began.elapsed();
                }
            }
        }
    }
}

/// 200 connections that never finish their headers (or never send a
/// byte, or trickle an HTTP/2 preface) are closed after the header
/// timeout, while a normal client is served all along.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_connections_are_closed_and_others_are_served() {
    const SLOW: usize = 200;
    let server = Server::builder()
        .flags(&["--http-header-timeout-seconds", "2"])
        .start();
    let org = server.create_org("acme", true).await;
    let (fds_before, threads_before) = fds_and_threads(server.pid());
    let kinds: [&'static [u8]; 3] = [
        b"GET /v1/streams/cam/thumbnail.jpg HTTP/1.1\r\nhost: liveproc\r\nx-slow: ",
        b"",
        b"PRI * HTTP/2.0\r\n",
    ];
    let clients: Vec<_> = (0..SLOW)
        .map(|i| tokio::spawn(slow_client(server.grpc, kinds[i % kinds.len()])))
        .collect();
    // While they trickle, a normal client is served.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let (fds_during, threads_during) = fds_and_threads(server.pid());
    let rss_during = rss_bytes(server.pid());
    let served = get(
        &server,
        "/v1/streams/none/thumbnail.jpg",
        Some(&org.api_key),
    )
    .await;
    assert_eq!(served.status(), 404);
    let mut held = vec![];
    for client in clients {
        held.push(
            within(20, "the server closes a slow connection", client)
                .await
                .unwrap(),
        );
    }
    let longest = held.iter().max().unwrap();
    eprintln!(
        "{SLOW} slow connections: held at most {longest:?}; while open the server had {fds_during} fds \
         ({fds_before} before), {threads_during} threads ({threads_before} before), RSS {} MiB",
        rss_during >> 20
    );
    assert!(
        *longest < std::time::Duration::from_secs(6),
        "a slow connection was held {longest:?} with a 2 s header timeout"
    );
    assert!(
        threads_during <= threads_before + 2,
        "slow connections took threads: {threads_before} -> {threads_during}"
    );
    // A normal client after them is served too.
    let served = get(
        &server,
        "/v1/streams/none/thumbnail.jpg",
        Some(&org.api_key),
    )
    .await;
    assert_eq!(served.status(), 404);
}

/// Sends `request` over a new connection from `from` (a loopback address)
/// and returns the status of the answer; `None` when the server closed
/// the connection without one.
async fn raw_status(
    server: std::net::SocketAddr,
    from: std::net::IpAddr,
    request: &[u8],
) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut stream = socket.connect(server).await.unwrap();
    let _ = stream.write_all(request).await;
    let mut answer = vec![];
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let head = String::from_utf8_lossy(&answer);
    head.split_whitespace().nth(1)?.parse().ok()
}

const GET_DASHBOARD: &[u8] = b"GET / HTTP/1.1\r\nhost: liveproc\r\nconnection: close\r\n\r\n";

/// One address holds at most `--http-max-connections-per-address`
/// connections: one more is closed at once, another address is served,
/// and a closed connection gives its place back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_past_its_connection_cap_is_closed_and_others_are_served() {
    use tokio::io::AsyncWriteExt;
    const CAP: usize = 8;
    let server = Server::builder()
        .flags(&[
            "--http-max-connections-per-address",
            &CAP.to_string(),
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .start();
    let here: std::net::IpAddr = [127, 0, 0, 1].into();
    let elsewhere: std::net::IpAddr = [127, 0, 0, 2].into();
    assert_eq!(
        raw_status(server.grpc, here, GET_DASHBOARD).await,
        Some(200)
    );
    // CAP connections that hold their place: a request head not finished.
    let mut held = vec![];
    for _ in 0..CAP {
        let mut socket = tokio::net::TcpStream::connect(server.grpc).await.unwrap();
        socket.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        held.push(socket);
    }
    // The server counts a connection once it has accepted it: the
    // first refusal may take a moment after the last connect.
    let refused = within(5, "a connection past the cap refused", async {
        loop {
            if raw_status(server.grpc, here, GET_DASHBOARD).await.is_none() {
                break;
            }
        }
    });
    refused.await;
    assert_eq!(
        raw_status(server.grpc, elsewhere, GET_DASHBOARD).await,
        Some(200),
        "another address is served"
    );
    server
        .until_log(&["too many from one address", "client=127.0.0.1"], 5)
        .await;
    let scrape = reqwest::get(format!("http://{}/metrics", server.metrics.unwrap()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        scrape.contains(r#"liveproc_http_connections_refused_total{reason="per_address_limit"}"#),
        "{scrape}"
    );
    drop(held);
    within(
        5,
        "the address served again once its connections closed",
        async {
            while raw_status(server.grpc, here, GET_DASHBOARD).await != Some(200) {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        },
    )
    .await;
}

/// A request head over 32 KiB is answered 431 and the connection closed;
/// one under it is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_heads_over_the_limit_are_refused_with_431() {
    let server = Server::start();
    let here: std::net::IpAddr = [127, 0, 0, 1].into();
    let request = |header_bytes: usize| {
        format!(
            "GET / HTTP/1.1\r\nhost: liveproc\r\nx-filler: {}\r\nconnection: close\r\n\r\n",
            "a".repeat(header_bytes)
        )
    };
    let small = raw_status(server.grpc, here, request(16 * 1024).as_bytes()).await;
    assert_eq!(small, Some(200));
    let large = raw_status(server.grpc, here, request(40 * 1024).as_bytes()).await;
    assert_eq!(large, Some(431));
}
