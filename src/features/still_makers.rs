//! Still-image pipelines kept from one thumbnail to the next. Building a
//! GStreamer pipeline per thumbnail (elements, a source thread, opening
//! the decoder and encoder) cost about as much as decoding and encoding
//! the picture; a [`Maker`] is built once and reused by every thumbnail
//! of its codec and image format, of any stream.
//!
//! A maker has no source element and no thread of its own: the job's
//! thread pushes into the parser through a pad of ours, so the whole
//! chain (`parse ! decode ! scale ! convert ! raw ! encode ! appsink`)
//! runs in the job's thread. Each thumbnail is one keyframe, then
//! end-of-stream, which drains the decoder (it may hold a frame back to
//! reorder); a flush then clears end-of-stream for the next one. A maker
//! that fails is dropped, never reused.
//!
//! A kept maker holds its decoder's pictures (8.6 MB of heap for 1080p):
//! one not used for [`UNUSED_FOR`] is dropped ([`drop_unused`], run
//! after each picture and by the job threads when they have nothing to
//! do), so a server whose streams have ended gives that memory back.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::still::{caps_and_size, picture_chain, raw_caps, Still};
use crate::gst_util;
use crate::media::{AccessUnit, Codec, MediaError, MediaResult};
use crate::options::ImageFormat;

/// Makers kept at most (idle ones, over every codec and format).
const KEPT: usize = 16;
/// A maker idle this long is dropped: thumbnails come at least every
/// hour per stream, every 10 s at most, so a busy server reuses its
/// makers long before.
const UNUSED_FOR: Duration = Duration::from_secs(30);

static IDLE: Mutex<Vec<Maker>> = Mutex::new(Vec::new());

/// Decodes `keyframe` and encodes it as `format`, scaled to fit the size
/// asked (aspect kept), with a kept maker. Blocking.
pub fn encode(
    keyframe: &AccessUnit,
    width: Option<u32>,
    height: Option<u32>,
    format: ImageFormat,
) -> MediaResult<Still> {
    let (caps, size) = caps_and_size(keyframe, width, height)?;
    let key = (keyframe.codec, format);
    let taken = {
        let mut idle = IDLE.lock().expect("makers lock");
        idle.iter()
            .position(|m| m.key == key)
            .map(|i| idle.swap_remove(i))
    };
    let mut maker = match taken {
        Some(maker) => maker,
        None => Maker::new(keyframe.codec, format)?,
    };
    let data = maker.make(keyframe, &caps, size)?;
    let still = Still {
        width: size.0,
        height: size.1,
        data,
        pts: keyframe.pts,
        decoded_frames: maker.decoded.swap(0, Ordering::Relaxed),
    };
    {
        let mut idle = IDLE.lock().expect("makers lock");
        if idle.len() < KEPT {
            maker.idle_since = Instant::now();
            idle.push(maker);
        }
    }
    // Makers of a codec or format no longer asked for, on a busy server
    // (the job threads' housekeeping runs when they are quiet).
    drop_unused();
    Ok(still)
}

/// Drops the makers nobody used for [`UNUSED_FOR`].
pub fn drop_unused() {
    // Runs after every picture: nothing is allocated unless one expired.
    let mut unused = Vec::new();
    {
        let mut idle = IDLE.lock().expect("makers lock");
        let mut i = 0;
        while i < idle.len() {
            if idle[i].idle_since.elapsed() >= UNUSED_FOR {
                unused.push(idle.swap_remove(i));
            } else {
                i += 1;
            }
        }
    }
    if !unused.is_empty() {
        tracing::debug!(
            makers = unused.len(),
            "dropped unused still-image pipelines"
        );
    }
    // Their pipelines stop here, outside the lock.
    drop(unused);
}

/// One kept pipeline.
struct Maker {
    key: (Codec, ImageFormat),
    pipeline: gst::Pipeline,
    /// Our pad into the parser.
    feed: gst::Pad,
    /// The output size (`video/x-raw, <format>, width, height`).
    size: gst::Element,
    /// The first picture the sink got for the thumbnail being made.
    picture: Arc<Mutex<Option<gst::Sample>>>,
    /// The caps last sent to the parser.
    caps: Option<gst::Caps>,
    /// Frames the decoder produced for the thumbnail being made.
    decoded: Arc<AtomicU64>,
    /// When it was last put back.
    idle_since: Instant,
}

impl Maker {
    fn new(codec: Codec, format: ImageFormat) -> MediaResult<Self> {
        let pipeline = gst::Pipeline::new();
        let (parse, decode) = gst_util::video_decoder(codec)?;
        let (chain, size) = picture_chain(format, None)?;
        // The picture is taken as it arrives, in the job's thread (appsink
        // holds end-of-stream back while a sample waits to be pulled).
        let picture: Arc<Mutex<Option<gst::Sample>>> = Arc::default();
        let slot = Arc::clone(&picture);
        let sink = gst_app::AppSink::builder()
            .sync(false)
            .async_(false)
            .callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        slot.lock().expect("picture lock").get_or_insert(sample);
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            )
            .build();
        let mut elements = vec![&parse, &decode];
        elements.extend(chain.iter());
        elements.push(sink.upcast_ref());
        pipeline.add_many(&elements)?;
        gst::Element::link_many(&elements)?;
        let feed = gst::Pad::builder(gst::PadDirection::Src)
            .name("feed")
            .build();
        feed.link(
            &parse
                .static_pad("sink")
                .ok_or_else(|| MediaError::pipeline("parser without sink pad"))?,
        )
        .map_err(|e| MediaError::Pipeline(format!("linking the feed: {e:?}")))?;
        let decoded = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&decoded);
        decode
            .static_pad("src")
            .ok_or_else(|| MediaError::pipeline("decoder without src pad"))?
            .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        gst_util::start(&pipeline)?;
        feed.set_active(true)
            .map_err(|e| MediaError::Pipeline(format!("activating the feed: {e}")))?;
        feed.push_event(gst::event::StreamStart::new("still"));
        Ok(Self {
            key: (codec, format),
            pipeline,
            feed,
            size,
            picture,
            caps: None,
            decoded,
            idle_since: Instant::now(),
        })
    }

    /// One picture: `keyframe` with its `caps`, at `size`.
    fn make(
        &mut self,
        keyframe: &AccessUnit,
        caps: &gst::Caps,
        size: (u32, u32),
    ) -> MediaResult<bytes::Bytes> {
        self.decoded.store(0, Ordering::Relaxed);
        self.size
            .set_property("caps", raw_caps(self.key.1, Some(size)));
        if self.caps.as_ref() != Some(caps) {
            self.feed.push_event(gst::event::Caps::new(caps));
            self.caps = Some(caps.clone());
        }
        self.feed
            .push_event(gst::event::Segment::new(&gst::FormattedSegment::<
                gst::ClockTime,
            >::new()));
        let offset = keyframe.decode_time().unwrap_or_default();
        let pushed = self
            .feed
            .push(crate::gst_format::buffer_of(keyframe, offset));
        // End-of-stream drains the decoder: the picture reaches the sink.
        self.feed.push_event(gst::event::Eos::new());
        let sample = self.picture.lock().expect("picture lock").take();
        let error = gst_util::first_error(&self.pipeline);
        // Ready for the next one: the flush clears end-of-stream.
        self.feed.push_event(gst::event::FlushStart::new());
        self.feed.push_event(gst::event::FlushStop::new(true));
        if let Some(e) = error {
            return Err(e);
        }
        pushed.map_err(|e| {
            MediaError::Pipeline(format!("the still pipeline refused the keyframe: {e:?}"))
        })?;
        let sample = sample
            .ok_or_else(|| MediaError::Unsupported("the keyframe decoded to no image".into()))?;
        let data = gst_util::concat(std::slice::from_ref(&sample))?;
        if data.is_empty() {
            return Err(MediaError::Unsupported(
                "the keyframe decoded to no image".into(),
            ));
        }
        Ok(bytes::Bytes::from(data))
    }
}

impl Drop for Maker {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use super::*;

    /// The first keyframe of `seconds` of `size` test pattern encoded
    /// with `codec` (B-frames on: the decoder holds pictures back), as
    /// the framer makes it.
    fn keyframe(dir: &Path, codec: Codec, size: (u32, u32)) -> AccessUnit {
        keyframe_of(dir, codec, size, "testsrc2=rate=30", &[])
    }

    /// The same of a lavfi `source` (e.g. `color=c=red:rate=30`), with more
    /// ffmpeg output arguments.
    fn keyframe_of(
        dir: &Path,
        codec: Codec,
        size: (u32, u32),
        source: &str,
        arguments: &[&str],
    ) -> AccessUnit {
        gst::init().unwrap();
        let (encoder, format) = match codec {
            Codec::H265 => ("libx265", "hevc"),
            _ => ("libx264", "h264"),
        };
        let path = dir.join(format!(
            "{format}-{}x{}-{}.raw",
            size.0,
            size.1,
            source.replace(['=', ':'], "-")
        ));
        let mut ffmpeg = std::process::Command::new("ffmpeg");
        ffmpeg
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("{source}:size={}x{}", size.0, size.1))
            .args([
                "-frames:v",
                "1",
                "-pix_fmt",
                "yuv420p",
                "-c:v",
                encoder,
                "-bf",
                "2",
            ]);
        if codec == Codec::H265 {
            ffmpeg.args(["-x265-params", "log-level=error"]);
        }
        ffmpeg.args(arguments);
        let status = ffmpeg
            .args(["-f", format])
            .arg(&path)
            .status()
            .expect("ffmpeg is installed");
        assert!(status.success());
        let data: bytes::Bytes = std::fs::read(&path).unwrap().into();
        let format = crate::media::TrackFormat::of_keyframe(codec, &data);
        assert_eq!(format.as_ref().and_then(|f| f.picture_size()), Some(size));
        AccessUnit {
            codec,
            pts: Some(Duration::from_secs(10)),
            dts: Some(Duration::from_secs(10)),
            duration: None,
            keyframe: true,
            data,
            format,
            received_ms: 0,
            discontinuity: false,
        }
    }

    #[test]
    fn kept_makers_make_the_same_images_as_a_pipeline_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let wide = keyframe(dir.path(), Codec::H264, (640, 360));
        let tall = keyframe(dir.path(), Codec::H264, (360, 640));
        let hevc = keyframe(dir.path(), Codec::H265, (320, 240));
        // Each case twice over, in an order that changes caps, size,
        // codec and format from one image to the next.
        let cases = [
            (&wide, None, ImageFormat::Jpeg),
            (&tall, Some(200), ImageFormat::Jpeg),
            (&hevc, None, ImageFormat::Jpeg),
            (&wide, Some(320), ImageFormat::Png),
            (&wide, None, ImageFormat::Jpeg),
            (&hevc, Some(160), ImageFormat::Webp),
        ];
        for round in 0..2 {
            for &(unit, width, format) in &cases {
                let kept = encode(unit, width, None, format).unwrap();
                let fresh =
                    super::super::still::encode_at(&[unit], None, width, None, format).unwrap();
                assert_eq!((kept.width, kept.height), (fresh.width, fresh.height));
                assert_eq!(kept.decoded_frames, 1, "round {round}");
                assert!(
                    kept.data == fresh.data,
                    "round {round}: {format:?} of {:?} at {width:?} differs",
                    unit.picture_size()
                );
            }
        }
    }

    #[test]
    fn jpeg_thumbnails_keep_the_source_colours() {
        let dir = tempfile::tempdir().unwrap();
        let colour = [200u8, 100, 50];
        let source = "color=c=0xC86432:rate=30";
        // Untagged SD: BT.601 limited range, as ffmpeg wrote it and
        // GStreamer reads it; HD tagged BT.709, written so.
        let sd = keyframe_of(dir.path(), Codec::H264, (640, 360), source, &[]);
        let hd = keyframe_of(
            dir.path(),
            Codec::H264,
            (1280, 720),
            source,
            &[
                "-vf",
                "scale=out_color_matrix=bt709:out_range=tv",
                "-colorspace",
                "bt709",
                "-color_primaries",
                "bt709",
                "-color_trc",
                "bt709",
                "-color_range",
                "tv",
            ],
        );
        for (name, unit) in [("SD", &sd), ("HD BT.709", &hd)] {
            for width in [None, Some(320)] {
                let still = encode(unit, width, None, ImageFormat::Jpeg).unwrap();
                let image = image::load_from_memory(&still.data).unwrap().to_rgb8();
                assert_eq!(image.dimensions(), (still.width, still.height));
                let centre = image.get_pixel(still.width / 2, still.height / 2).0;
                let off = centre
                    .iter()
                    .zip(colour)
                    .map(|(&a, b)| (i32::from(a) - i32::from(b)).abs())
                    .max()
                    .unwrap();
                assert!(
                    off <= 4,
                    "{name} at {width:?}: {centre:?} where the source is {colour:?}"
                );
            }
        }
    }

    #[test]
    fn unused_makers_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let unit = keyframe(dir.path(), Codec::H265, (320, 240));
        // A codec and format no other test asks for (makers are shared).
        let format = ImageFormat::Png;
        let kept = |idle_for: Option<Duration>| {
            let mut idle = IDLE.lock().unwrap();
            let mine = idle.iter_mut().filter(|m| m.key == (Codec::H265, format));
            let mut count = 0;
            for maker in mine {
                if let Some(idle_for) = idle_for {
                    maker.idle_since = Instant::now() - idle_for;
                }
                count += 1;
            }
            count
        };
        encode(&unit, None, None, format).unwrap();
        assert_eq!(kept(None), 1);
        drop_unused();
        assert_eq!(kept(None), 1, "a maker just used is kept");
        assert_eq!(kept(Some(UNUSED_FOR)), 1);
        drop_unused();
        assert_eq!(
            kept(None),
            0,
            "a maker unused for {UNUSED_FOR:?} is dropped"
        );
    }

    /// CPU time per 1080p JPEG thumbnail, kept maker against a pipeline
    /// per image (`cargo test --release -- --ignored --nocapture cost`).
    #[test]
    #[ignore]
    fn cost_of_a_1080p_thumbnail() {
        let dir = tempfile::tempdir().unwrap();
        let unit = keyframe(dir.path(), Codec::H264, (1920, 1080));
        // utime + stime of this process, in seconds (clock ticks of 10 ms).
        let cpu = || {
            let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
            let fields: Vec<&str> = stat
                .rsplit(')')
                .next()
                .unwrap()
                .split_whitespace()
                .collect();
            (fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap()) / 100.0
        };
        const N: u32 = 60;
        for (name, make) in [("pipeline per image", false), ("kept maker", true)] {
            let one = || {
                if make {
                    encode(&unit, None, None, ImageFormat::Jpeg)
                } else {
                    super::super::still::encode_at(&[&unit], None, None, None, ImageFormat::Jpeg)
                }
                .unwrap()
            };
            one();
            let (start, wall) = (cpu(), Instant::now());
            for _ in 0..N {
                one();
            }
            println!(
                "{name}: {:.2} ms CPU, {:.2} ms wall per 1080p thumbnail",
                (cpu() - start) * 1000.0 / f64::from(N),
                wall.elapsed().as_secs_f64() * 1000.0 / f64::from(N)
            );
        }
    }
}
