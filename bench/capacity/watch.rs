//! The load's subscribers: follow a stream's thumbnails, motion clips and
//! replay segments over gRPC and note when each arrived, for latency and
//! for gaps (a sequence jump or `skipped` means the server dropped work).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use liveproc::proto::v1 as pb;
use liveproc::proto::v1::live_processing_client::LiveProcessingClient;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::common::authed;

/// One thing a subscriber received.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    pub at: SystemTime,
    pub sequence: u64,
    /// The item's presentation time in the stream, seconds.
    pub pts: f64,
    /// Server wall-clock time its (first) frame was captured, if it says.
    pub captured: Option<SystemTime>,
    /// Items the server says this subscriber missed just before it.
    pub skipped: u64,
}

/// What a stream's subscribers have received so far.
#[derive(Default)]
pub struct Received {
    pub thumbnails: Mutex<Vec<Arrival>>,
    pub motion_clips: Mutex<Vec<Arrival>>,
    pub replay_segments: Mutex<Vec<Arrival>>,
    pub errors: Mutex<Vec<String>>,
    /// The newest motion clip's file, to probe after the hold.
    pub last_motion_clip: Mutex<Option<bytes::Bytes>>,
}

fn seconds(d: &Option<pbjson_types::Duration>) -> f64 {
    d.as_ref()
        .map(|d| d.seconds as f64 + d.nanos as f64 / 1e9)
        .unwrap_or_default()
}

fn system_time(t: &Option<pbjson_types::Timestamp>) -> Option<SystemTime> {
    let t = t.as_ref()?;
    Some(SystemTime::UNIX_EPOCH + Duration::new(t.seconds as u64, t.nanos as u32))
}

/// Subscriptions of one stream, ended by `stop`.
pub struct Subscriptions {
    pub received: Arc<Received>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Subscriptions {
    /// Subscribes to thumbnails and, with `all`, to motion clips and replay.
    pub fn start(
        channel: Channel,
        api_key: &str,
        stream_id: &str,
        all: bool,
        stop: CancellationToken,
    ) -> Subscriptions {
        let received = Arc::new(Received::default());
        let client = LiveProcessingClient::new(channel);
        let follows = Follows {
            received: received.clone(),
            stop,
        };
        let mut tasks = vec![];
        let request = pb::SubscribeThumbnailsRequest {
            stream_id: stream_id.into(),
            send_latest: false,
        };
        let mut c = client.clone();
        let request = authed(request, api_key);
        let call = async move { c.subscribe_thumbnails(request).await };
        tasks.push(follows.spawn(
            "thumbnails",
            call,
            |r| &r.thumbnails,
            |t| Arrival {
                at: SystemTime::now(),
                sequence: t.sequence,
                pts: seconds(&t.pts),
                captured: system_time(&t.capture_time),
                skipped: 0,
            },
            |_, _| {},
        ));
        if all {
            let request = pb::SubscribeMotionClipsRequest {
                stream_id: stream_id.into(),
                send_latest: false,
            };
            let mut c = client.clone();
            let request = authed(request, api_key);
            let call = async move { c.subscribe_motion_clips(request).await };
            tasks.push(follows.spawn(
                "motion clips",
                call,
                |r| &r.motion_clips,
                |c| Arrival {
                    at: SystemTime::now(),
                    sequence: c.sequence,
                    pts: seconds(&c.start_pts),
                    captured: system_time(&c.start_time),
                    skipped: 0,
                },
                |r, c| *r.last_motion_clip.lock().unwrap() = Some(c.data),
            ));
            let request = pb::SubscribeReplayRequest {
                stream_id: stream_id.into(),
                start: Some(pb::ReplayStart {
                    start: Some(pb::replay_start::Start::LiveEdge(true)),
                }),
                format: pb::SegmentFormat::MpegTs as i32,
            };
            let mut c = client;
            let request = authed(request, api_key);
            let call = async move { c.subscribe_replay(request).await };
            tasks.push(follows.spawn(
                "replay",
                call,
                |r| &r.replay_segments,
                |s| Arrival {
                    at: SystemTime::now(),
                    sequence: s.sequence,
                    pts: seconds(&s.start_pts),
                    captured: system_time(&s.start_time),
                    skipped: s.skipped,
                },
                |_, _| {},
            ));
        }
        Subscriptions { received, tasks }
    }

    /// Waits for the subscriptions to end (after `stop`).
    pub async fn finish(self) -> Arc<Received> {
        for task in self.tasks {
            let _ = task.await;
        }
        self.received
    }
}

/// Spawns the tasks that follow one stream's subscriptions.
struct Follows {
    received: Arc<Received>,
    stop: CancellationToken,
}

impl Follows {
    /// Follows the server stream `call` opens, noting each item with
    /// `arrival` into the list `into` picks, until `stop` or its end.
    fn spawn<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl Future<Output = Result<tonic::Response<tonic::Streaming<T>>, tonic::Status>>
            + Send
            + 'static,
        into: fn(&Received) -> &Mutex<Vec<Arrival>>,
        arrival: fn(&T) -> Arrival,
        keep: fn(&Received, T),
    ) -> tokio::task::JoinHandle<()> {
        let (received, stop) = (self.received.clone(), self.stop.clone());
        tokio::spawn(async move {
            let result = async {
                let mut stream = call.await?.into_inner();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        message = stream.message() => match message? {
                            Some(item) => {
                                into(&received).lock().unwrap().push(arrival(&item));
                                keep(&received, item);
                            }
                            None => return Ok(()),
                        },
                    }
                }
            };
            if let Err(status) = result.await as Result<(), tonic::Status> {
                received.errors.lock().unwrap().push(format!(
                    "{what}: {} {}",
                    status.code(),
                    status.message()
                ));
            }
        })
    }
}
