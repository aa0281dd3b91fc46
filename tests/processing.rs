//! Thumbnails and motion clips from real H.264/AAC through the real ingest
//! paths, checked as a user would: images decode, have the right size, are
//! not blank and match the source frame; clips probe with the requested
//! duration and play.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;
use tonic::Code;

fn thumbnails(
    interval: u32,
    format: pb::ImageFormat,
    width: u32,
    height: u32,
) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: interval,
            format: format as i32,
            width,
            height,
        }),
        ..Default::default()
    }
}

fn motion_clips(duration: u32, interval: u32, format: pb::ClipFormat) -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        motion_clip: Some(pb::MotionClipOptions {
            enabled: true,
            duration_seconds: duration,
            interval_seconds: interval,
            format: format as i32,
            width: 0,
        }),
        ..Default::default()
    }
}

async fn subscribe_thumbnails(
    server: &Server,
    key: &str,
    stream_id: &str,
    send_latest: bool,
) -> tonic::Streaming<pb::Thumbnail> {
    server
        .live()
        .await
        .subscribe_thumbnails(authed(
            pb::SubscribeThumbnailsRequest {
                stream_id: stream_id.into(),
                send_latest,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
}

async fn next_thumbnail(sub: &mut tonic::Streaming<pb::Thumbnail>, secs: u64) -> pb::Thumbnail {
    within(secs, "a thumbnail", sub.message())
        .await
        .unwrap()
        .expect("thumbnail stream ended")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnails_follow_the_cadence_and_match_the_source() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(
        &server,
        key,
        "cam",
        Some(thumbnails(10, pb::ImageFormat::Unspecified, 0, 0)),
    )
    .await
    .unwrap();
    let mut sub = subscribe_thumbnails(&server, key, "cam", true).await;
    // A subscriber that never reads must not hold anything up (the fan-out
    // itself is tested with hundreds of items in api::live_processing).
    let _stalled = subscribe_thumbnails(&server, key, "cam", true).await;

    // 25 s published in real time over SRT: thumbnails at 0, 10 and 20 s.
    let source = test_ts_25s();
    let ffmpeg = srt_publish(&server.srt_url(&stream), source);
    let mut got = vec![];
    for _ in 0..3 {
        got.push(next_thumbnail(&mut sub, 40).await);
    }
    assert!(within(40, "ffmpeg", wait_child(ffmpeg)).await.success());
    // Only keyframes are decoded: one frame per thumbnail.
    let stats = get_stream(&server, key, "cam")
        .await
        .unwrap()
        .ingest_stats
        .expect("session stats");
    assert_eq!(
        stats.thumbnail_frames_decoded,
        got.len() as u64,
        "frames decoded for {} thumbnails",
        got.len()
    );

    let first_pts = secs(&got[0].pts);
    for (i, thumb) in got.iter().enumerate() {
        assert_eq!(thumb.sequence, i as u64 + 1);
        assert_eq!(thumb.format(), pb::ImageFormat::Jpeg);
        assert_eq!((thumb.width, thumb.height), (640, 360));
        // Interval boundaries, within one GOP (1 s).
        let offset = secs(&thumb.pts) - first_pts;
        assert!(
            (offset - 10.0 * i as f64).abs() <= 1.0,
            "thumbnail {i} at +{offset} s"
        );

        let image = image::load_from_memory_with_format(&thumb.data, image::ImageFormat::Jpeg)
            .expect("a JPEG that decodes")
            .to_rgb8();
        assert_eq!(image.dimensions(), (640, 360));
        let pixels = image.as_raw();
        assert!(spread(pixels) > 20.0, "thumbnail {i} looks blank");
        // The frame it shows: the source frame at the same stream time.
        let frame = (offset * 30.0).round() as u32;
        assert_picture_is_frame(pixels, source, frame, &format!("thumbnail {i}"));
    }

    // The latest is kept, also across a restart.
    let latest = server
        .live()
        .await
        .get_thumbnail(authed(
            pb::GetThumbnailRequest {
                stream_id: "cam".into(),
                at: None,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(latest.sequence, got[2].sequence);
    let dir = server.stop();
    let server = Server::builder()
        .data_dir(&dir.as_ref().unwrap().path().join("data"))
        .start();
    let restored = server
        .live()
        .await
        .get_thumbnail(authed(
            pb::GetThumbnailRequest {
                stream_id: "cam".into(),
                at: None,
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restored, latest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thumbnail_options_change_on_a_live_stream() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    // The built-in test pattern is live for as long as the stream exists.
    server
        .live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: "pattern".into(),
                name: String::new(),
                processing: Some(thumbnails(3600, pb::ImageFormat::Jpeg, 0, 0)),
                source_uri: "test://pattern".into(),
                srt_encryption: None,
            },
            key,
        ))
        .await
        .unwrap();
    // With the latest: the first may be made before the subscription starts.
    let mut sub = subscribe_thumbnails(&server, key, "pattern", true).await;
    let first = next_thumbnail(&mut sub, 30).await;
    assert_eq!((first.width, first.height), (1280, 720));
    let mut watch = Watcher::start(&server, key, "pattern").await;
    watch.until_state(StreamState::Live, 10).await;
    let session = get_stream(&server, key, "pattern")
        .await
        .unwrap()
        .ingest_stats
        .and_then(|s| s.session_start_time)
        .expect("a live session");

    // Same session, new options: PNG at 320 px wide, every 10 s. The next
    // one comes within one (new) interval, not after the old hour.
    server
        .live()
        .await
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "pattern".into(),
                processing: Some(thumbnails(10, pb::ImageFormat::Png, 320, 0)),
            },
            key,
        ))
        .await
        .unwrap();
    let second = next_thumbnail(&mut sub, 25).await;
    assert_eq!(second.format(), pb::ImageFormat::Png);
    assert_eq!((second.width, second.height), (320, 180));
    let png = image::load_from_memory_with_format(&second.data, image::ImageFormat::Png).unwrap();
    assert_eq!((png.width(), png.height()), (320, 180));
    assert!(spread(png.to_rgb8().as_raw()) > 20.0);
    let gap = secs(&second.pts) - secs(&first.pts);
    assert!(
        (9.0..=12.0).contains(&gap),
        "second thumbnail {gap} s after the first"
    );
    // The session was never restarted: the next event is the option
    // change itself, on the same session.
    let changed = within(10, "the option change event", watch.next()).await;
    assert_eq!(
        changed.kind(),
        pb::stream_event::Kind::ProcessingChanged,
        "{:?}",
        watch.seen
    );
    assert_eq!(changed.state(), StreamState::Live);
    let still = get_stream(&server, key, "pattern")
        .await
        .unwrap()
        .ingest_stats
        .and_then(|s| s.session_start_time);
    assert_eq!(still, Some(session), "the session restarted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn motion_clips_in_every_format() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let formats = [
        pb::ClipFormat::Mp4,
        pb::ClipFormat::Mp4Preview,
        pb::ClipFormat::Gif,
    ];
    let mut subs = vec![];
    let mut streams = vec![];
    for format in formats {
        let id = format!(
            "clip-{}",
            format.as_str_name().to_lowercase().replace('_', "-")
        );
        streams.push(
            create_stream(&server, key, &id, Some(motion_clips(3, 10, format)))
                .await
                .unwrap(),
        );
        subs.push(
            server
                .live()
                .await
                .subscribe_motion_clips(authed(
                    pb::SubscribeMotionClipsRequest {
                        stream_id: id.clone(),
                        send_latest: false,
                    },
                    key,
                ))
                .await
                .unwrap()
                .into_inner(),
        );
    }
    // Three encoders publishing in real time at once.
    let encoders: Vec<_> = streams
        .iter()
        .map(|s| srt_publish(&server.srt_url(s), test_ts_25s()))
        .collect();
    for (format, sub) in formats.iter().zip(subs.iter_mut()) {
        let mut clips = vec![];
        for _ in 0..3 {
            clips.push(
                within(60, "a motion clip", sub.message())
                    .await
                    .unwrap()
                    .expect("clip stream ended"),
            );
        }
        let first = secs(&clips[0].start_pts);
        for (i, clip) in clips.iter().enumerate() {
            assert_eq!(clip.format(), *format);
            assert!((secs(&clip.start_pts) - first - 10.0 * i as f64).abs() <= 1.0);
            assert!(
                (secs(&clip.duration) - 3.0).abs() <= 1.0,
                "{:?}",
                clip.duration
            );
            match format {
                pb::ClipFormat::Gif => {
                    let (frames, played) = gif_frames(&clip.data);
                    assert!(frames >= 10, "GIF with {frames} frames");
                    // What a browser plays: the frames' own delays.
                    assert!(
                        (played - 3.0).abs() <= 1.0,
                        "GIF of {frames} frames plays {played} s"
                    );
                    assert_eq!((clip.width, clip.height), (320, 180));
                }
                _ => {
                    let probe = ffprobe(&clip.data);
                    let duration: f64 = probe["format"]["duration"]
                        .as_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    assert!(
                        (duration - 3.0).abs() <= 1.0,
                        "{format:?} clip of {duration} s"
                    );
                    let streams = probe["streams"].as_array().unwrap();
                    let video = streams.iter().find(|s| s["codec_type"] == "video").unwrap();
                    assert_eq!(video["codec_name"], "h264");
                    let decoded: u32 = video["nb_read_frames"].as_str().unwrap().parse().unwrap();
                    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
                    if *format == pb::ClipFormat::Mp4 {
                        assert_eq!(
                            (video["width"].as_u64(), video["height"].as_u64()),
                            (Some(640), Some(360))
                        );
                        assert!(has_audio, "MP4 clips keep the audio");
                        probe_av(&clip.data, "clip.mp4").assert_audio_and_video(
                            &format!("MP4 motion clip {i}"),
                            secs(&clip.duration),
                            1.0,
                        );
                        assert!(
                            (85..=95).contains(&decoded),
                            "{decoded} frames in 3 s at 30 fps"
                        );
                    } else {
                        assert_eq!(video["width"].as_u64(), Some(320));
                        assert!(!has_audio, "previews have no audio");
                        assert!(decoded >= 60, "{decoded} frames");
                    }
                }
            }
        }
    }
    for encoder in encoders {
        assert!(within(30, "ffmpeg", wait_child(encoder)).await.success());
    }
}

/// The frames of a GIF and how long it plays (the sum of their delays), s.
fn gif_frames(data: &[u8]) -> (usize, f64) {
    use image::AnimationDecoder;
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(data)).expect("a GIF");
    let frames: Vec<_> = decoder
        .into_frames()
        .collect::<Result<_, _>>()
        .expect("GIF frames decode");
    let played = frames
        .iter()
        .map(|f| {
            let (num, den) = f.delay().numer_denom_ms();
            f64::from(num) / f64::from(den) / 1000.0
        })
        .sum();
    (frames.len(), played)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_thumbnail_yet_and_no_media_at_that_time_are_not_found() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    let mut live = server.live().await;
    let status = live
        .get_thumbnail(authed(
            pb::GetThumbnailRequest {
                stream_id: "cam".into(),
                at: None,
            },
            &org.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = live
        .get_thumbnail(authed(
            pb::GetThumbnailRequest {
                stream_id: "cam".into(),
                at: Some(pbjson_types::Timestamp::default()),
            },
            &org.api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
