//! The recorder driven in-process with synthetic access units (no
//! encoder, no server): where files are cut, which file each audio frame
//! lands in, and what the catalogue lists. Files are read back through
//! the `mp4` crate's fragment boxes.

use std::sync::Arc;
use std::time::Duration;

use super::{Recorder, RecordingStore};
use crate::container::round_trip::fragmented_samples;
use crate::features::driver::Feature;
use crate::features::test_media::{media, video, FPS, FRAME_MS, OTHER_PPS};
use crate::ids::StreamRef;
use crate::options::{Processing, Recording, Span};
use crate::registry::{RecordingRecord, Registry};
use crate::store::DataDir;
use crate::streams::StreamHub;

struct Rig {
    _dir: tempfile::TempDir,
    registry: Arc<Registry>,
    store: Arc<RecordingStore>,
    recorder: Recorder,
}

fn rig(segment: Span) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(Registry::open_embedded(&dir.path().join("registry.redb")).unwrap());
    let store = Arc::new(RecordingStore::new(
        DataDir::new(dir.path()),
        Arc::clone(&registry),
        0,
        false,
    ));
    let hub = StreamHub::default();
    let (stream, _) = hub.add(StreamRef::new("org", "cam"), Processing::default());
    let recorder = Recorder::new(Arc::clone(&store), stream, Recording { segment });
    Rig {
        _dir: dir,
        registry,
        store,
        recorder,
    }
}

impl Rig {
    /// Ends the session and returns the catalogue with each file's
    /// samples: (video decode times in ms, audio decode times in ms).
    async fn finish(self) -> Vec<(RecordingRecord, Vec<u64>, Vec<u64>)> {
        self.recorder.end();
        self.store.closing.close();
        self.store.closing.wait().await;
        assert!(self.store.catalogue.flush(Duration::from_secs(5)).await);
        let mut records = self
            .registry
            .list_recordings("org", "cam", "", 100)
            .await
            .unwrap()
            .items;
        // Ids sort by their millisecond: files opened within one come in
        // any order.
        records.sort_by_key(|r| r.start_pts_ns);
        records
            .into_iter()
            .map(|record| {
                let data = std::fs::read(self.store.path(&record)).unwrap();
                let reader =
                    ::mp4::Mp4Reader::read_header(std::io::Cursor::new(&data), data.len() as u64)
                        .unwrap();
                let mut video = vec![];
                let mut audio = vec![];
                let samples = fragmented_samples(&data);
                for (id, track) in reader.tracks() {
                    let scale = u64::from(track.timescale());
                    let start = record.start_pts_ns / 1_000_000;
                    let times: Vec<u64> = samples
                        .get(id)
                        .map(|s| s.iter().map(|s| start + s.0 * 1000 / scale).collect())
                        .unwrap_or_default();
                    match track.track_type().unwrap() {
                        ::mp4::TrackType::Video => video = times,
                        _ => audio = times,
                    }
                }
                (record, video, audio)
            })
            .collect()
    }
}

/// Every audio frame sent is in exactly one file, and in the file whose
/// video covers its time.
fn assert_audio_placed(files: &[(RecordingRecord, Vec<u64>, Vec<u64>)], sent: usize) {
    let total: usize = files.iter().map(|f| f.2.len()).sum();
    assert_eq!(total, sent, "audio frames recorded");
    for (i, (_, video, audio)) in files.iter().enumerate() {
        let (first, last) = (video[0], *video.last().unwrap());
        let end = if i + 1 < files.len() {
            files[i + 1].1[0]
        } else {
            last + FRAME_MS
        };
        for &a in audio {
            assert!(
                a + 1 >= first && a < end,
                "file {i}: audio at {a} ms outside its video {first}..{end} ms"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_cut_at_keyframes_and_audio_goes_where_it_plays() {
    for lead_ms in [400, -400] {
        let mut rig = rig(Span::Seconds(2));
        let units = media(6, 1000, lead_ms, true);
        let sent_audio = units.iter().filter(|u| !u.codec.is_video()).count();
        for unit in units {
            rig.recorder.on_unit(unit);
        }
        let files = rig.finish().await;
        assert_eq!(files.len(), 3, "audio lead {lead_ms} ms");
        for (record, video, _) in &files {
            assert_eq!(video.len(), 50, "{record:?}");
            assert_eq!(record.duration_ns, 2_000_000_000, "{record:?}");
        }
        assert_audio_placed(&files, sent_audio);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jump_of_the_clock_starts_a_new_file() {
    let mut rig = rig(Span::EntireStream);
    let mut units = media(3, 1000, 200, true);
    let mut after = media(3, 4000, 200, true);
    after[0].discontinuity = true;
    units.extend(after);
    for unit in units {
        rig.recorder.on_unit(unit);
    }
    let files = rig.finish().await;
    assert_eq!(files.len(), 2);
    assert_eq!(files[1].1[0], 4000, "the new file starts at the jump");
    assert_eq!(files[0].1.len() + files[1].1.len(), 150);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_change_starts_a_new_file() {
    let mut rig = rig(Span::EntireStream);
    let mut units = media(2, 1000, 0, false);
    units.extend((0..50).map(|n| video(n, FPS, 3000, OTHER_PPS)));
    for unit in units {
        rig.recorder.on_unit(unit);
    }
    let files = rig.finish().await;
    assert_eq!(files.len(), 2);
    assert_eq!((files[0].1.len(), files[1].1.len()), (50, 50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_that_starts_late_gets_a_file_with_it_from_its_first_frame() {
    let mut rig = rig(Span::EntireStream);
    // 3 s of video alone (past the recorder's wait for audio), then 3 s
    // of video with audio, which the muxer sends 300 ms ahead.
    let mut units = media(3, 1000, 0, false);
    let with_audio = media(3, 4000, 300, true);
    let sent_audio = with_audio.iter().filter(|u| !u.codec.is_video()).count();
    // The first audio frames arrive before the keyframe they play with.
    units.extend(with_audio);
    units.sort_by_key(|u| {
        let pts = u.pts.unwrap().as_millis() as i64;
        if u.codec.is_video() {
            pts
        } else {
            pts - 300
        }
    });
    for unit in units {
        rig.recorder.on_unit(unit);
    }
    let files = rig.finish().await;
    assert_eq!(files.len(), 2, "a new file when the audio starts");
    assert!(files[0].2.is_empty(), "the first file has no audio track");
    // The audio came ahead of its keyframe (at 4 s), while the GOP from
    // 3 s was kept back: the file with audio starts there.
    assert_eq!(files[1].1[0], 3000);
    assert_eq!(files[0].1.len() + files[1].1.len(), 150);
    assert_audio_placed(&files, sent_audio);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_short_by_a_crash_is_repaired_to_its_whole_fragments() {
    let mut rig = rig(Span::EntireStream);
    for unit in media(4, 1000, 200, true) {
        rig.recorder.on_unit(unit);
    }
    // The process dies: no end, the file is as far as it was written,
    // and the last fragment only partly.
    assert!(rig.store.catalogue.flush(Duration::from_secs(5)).await);
    let record = rig
        .registry
        .list_recordings("org", "cam", "", 10)
        .await
        .unwrap()
        .items
        .remove(0);
    let path = rig.store.path(&record);
    drop(rig.recorder);
    let written = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(written - 100)
        .unwrap();
    let duration = super::recovery::finalize(&path).unwrap();
    // Whole fragments of one second survive; the torn one is cut off.
    let data = std::fs::read(&path).unwrap();
    let samples = fragmented_samples(&data);
    let video = samples.get(&1).map_or(0, Vec::len) as u64;
    assert!(
        video > 0 && video.is_multiple_of(FPS),
        "{video} video frames kept"
    );
    assert_eq!(duration, Duration::from_millis(video * FRAME_MS));
    assert!(samples.get(&2).is_some_and(|a| !a.is_empty()), "audio kept");
}
