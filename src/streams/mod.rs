//! The runtime side of every registered stream: its state (IDLE, LIVE,
//! ERROR, ENDED), the ordered event feed behind `WatchStream`, the current
//! processing options the pipeline follows, and the single publisher slot.
//!
//! The durable facts of a stream live in the [`crate::registry`]; this hub
//! holds what exists only while the server runs (what its features
//! produce is kept by [`crate::features`]). Each stream's events are
//! numbered under one lock so that a watcher sees a gap-free sequence, and
//! sending never waits for a slow watcher (a lagging one is told what it
//! missed and given the current state).

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use dashmap::DashMap;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::ids::StreamRef;
use crate::media::now_millis;
use crate::options::Processing;
use crate::pipeline::SessionStats;
use crate::proto::timestamp_from_millis;
use crate::proto::v1 as pb;
use crate::registry::cluster::Fence;

/// Events kept for watchers that are a little behind.
const EVENT_BUFFER: usize = 256;
/// Events of every stream kept for [`StreamHub::notices`] readers that
/// are a little behind.
const NOTICE_BUFFER: usize = 4096;

/// An event of one stream, as every stream's are told to
/// [`StreamHub::notices`] readers (webhooks).
pub type Notice = (StreamRef, pb::StreamEvent);

/// How media reaches a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublisherKind {
    Srt,
    GrpcPush,
    Rtmp,
    Pull,
}

impl PublisherKind {
    pub const ALL: [PublisherKind; 4] = [
        PublisherKind::Srt,
        PublisherKind::GrpcPush,
        PublisherKind::Rtmp,
        PublisherKind::Pull,
    ];

    /// Whether the publisher can be held back by not reading it (TCP or
    /// HTTP/2 flow control), rather than refused when too fast.
    pub fn has_flow_control(self) -> bool {
        matches!(self, PublisherKind::GrpcPush | PublisherKind::Rtmp)
    }

    /// The ingest protocol's name in metrics.
    pub fn label(self) -> &'static str {
        match self {
            PublisherKind::Srt => "srt",
            PublisherKind::GrpcPush => "grpc",
            PublisherKind::Rtmp => "rtmp",
            PublisherKind::Pull => "pull",
        }
    }
}

impl fmt::Display for PublisherKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PublisherKind::Srt => "SRT",
            PublisherKind::GrpcPush => "gRPC PushMedia",
            PublisherKind::Rtmp => "RTMP",
            PublisherKind::Pull => "pull source",
        })
    }
}

/// Why this node lets a publisher (or a pull) go before it leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LetGo {
    /// Its stream key was rotated.
    KeyRotated,
    /// The node is behind: the newest session goes so that the others
    /// keep what they need (the reason says how far behind).
    Shed(String),
}

/// The holder of a stream's publisher slot.
struct Holder {
    kind: PublisherKind,
    /// When it took the slot (the newest session is shed first).
    since: Instant,
    let_go: Arc<LetGoSignal>,
}

/// Told once, the first reason wins.
#[derive(Default)]
struct LetGoSignal {
    reason: OnceLock<LetGo>,
    told: CancellationToken,
}

impl LetGoSignal {
    fn tell(&self, reason: LetGo) {
        let _ = self.reason.set(reason);
        self.told.cancel();
    }
}

struct Status {
    sequence: u64,
    state: pb::StreamState,
    message: String,
    processing: Processing,
    time_ms: i64,
}

/// One registered stream while the server runs.
pub struct LiveStream {
    pub stream_ref: StreamRef,
    status: Mutex<Status>,
    events: broadcast::Sender<pb::StreamEvent>,
    processing: watch::Sender<Processing>,
    /// The current publisher (or pull) here, with what disconnects it.
    publisher: Mutex<Option<Holder>>,
    /// The publish key this node last saw in the registry: a new one
    /// disconnects a publisher that came with the old.
    publish_key: Mutex<Option<String>>,
    /// Stops the work of the stream (sessions, pulls): on delete, and first
    /// thing at shutdown.
    cancel: CancellationToken,
    /// Ends the stream's watchers: on delete, and at shutdown once the
    /// sessions have ended (so watchers see the last state changes).
    watchers_end: CancellationToken,
    deleted: AtomicBool,
    /// Counters of the current or last session.
    stats: Mutex<Option<Arc<SessionStats>>>,
    /// Every event is told here too ([`StreamHub::notices`]).
    notices: broadcast::Sender<Notice>,
}

/// Holds the publisher slot of a stream; releasing it on drop.
pub struct PublisherGuard {
    stream: Arc<LiveStream>,
    let_go: Arc<LetGoSignal>,
}

impl PublisherGuard {
    /// Resolves when this node lets the publisher go ([`LetGo`]): it
    /// must then end its session.
    pub async fn let_go(&self) -> LetGo {
        self.let_go.told.cancelled().await;
        self.let_go
            .reason
            .get()
            .cloned()
            .expect("a reason is set before it is told")
    }
}

impl Drop for PublisherGuard {
    fn drop(&mut self) {
        *self.stream.publisher.lock().expect("publisher lock") = None;
    }
}

impl Status {
    fn event(&self, kind: pb::stream_event::Kind) -> pb::StreamEvent {
        pb::StreamEvent {
            sequence: self.sequence,
            time: Some(timestamp_from_millis(self.time_ms)),
            state: self.state as i32,
            message: self.message.clone(),
            processing: Some(self.processing.to_proto()),
            kind: kind as i32,
        }
    }
}

impl LiveStream {
    fn new(
        stream_ref: StreamRef,
        processing: Processing,
        cancel: CancellationToken,
        watchers_end: CancellationToken,
        notices: broadcast::Sender<Notice>,
    ) -> Self {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let (processing_tx, _) = watch::channel(processing.clone());
        Self {
            status: Mutex::new(Status {
                sequence: 0,
                state: pb::StreamState::Idle,
                message: String::new(),
                processing,
                time_ms: now_millis(),
            }),
            events,
            processing: processing_tx,
            publisher: Mutex::new(None),
            publish_key: Mutex::new(None),
            cancel,
            watchers_end,
            deleted: AtomicBool::new(false),
            stats: Mutex::new(None),
            notices,
            stream_ref,
        }
    }

    /// Starts the counters of a new session, whose writes carry `fence`.
    pub fn new_session_stats(&self, fence: Fence) -> Arc<SessionStats> {
        let stats = Arc::new(SessionStats::started_now(fence));
        *self.stats.lock().expect("stats lock") = Some(Arc::clone(&stats));
        stats
    }

    /// The counters of the current or last session, if any.
    pub fn session_stats(&self) -> Option<Arc<SessionStats>> {
        self.stats.lock().expect("stats lock").clone()
    }

    pub fn state(&self) -> pb::StreamState {
        self.status.lock().expect("status lock").state
    }

    /// Records a state change and tells the watchers. Repeating the current
    /// state with the same message is not an event.
    pub fn set_state(&self, state: pb::StreamState, message: impl Into<String>) {
        let message = message.into();
        let mut status = self.status.lock().expect("status lock");
        if status.state == state && status.message == message {
            return;
        }
        status.state = state;
        status.message = message;
        self.publish(&mut status, pb::stream_event::Kind::StateChanged);
    }

    /// Applies new processing options: the pipeline follows the watch.
    pub fn set_processing(&self, processing: Processing) {
        let mut status = self.status.lock().expect("status lock");
        if status.processing == processing {
            return;
        }
        status.processing = processing.clone();
        status.message = "processing options changed".to_string();
        self.publish(&mut status, pb::stream_event::Kind::ProcessingChanged);
        self.processing.send_replace(processing);
    }

    fn publish(&self, status: &mut Status, kind: pb::stream_event::Kind) {
        status.sequence += 1;
        status.time_ms = now_millis();
        // No receiver is fine: nobody is watching.
        let event = status.event(kind);
        let _ = self.notices.send((self.stream_ref.clone(), event.clone()));
        let _ = self.events.send(event);
    }

    /// The current state as a `SNAPSHOT` event and a receiver of every later
    /// event, taken atomically so that no event is missed or repeated.
    pub fn watch(&self) -> (pb::StreamEvent, broadcast::Receiver<pb::StreamEvent>) {
        let status = self.status.lock().expect("status lock");
        let rx = self.events.subscribe();
        (status.event(pb::stream_event::Kind::Snapshot), rx)
    }

    /// The current state as an `EVENTS_SKIPPED` event (for a lagging watcher).
    pub fn skipped_event(&self) -> pb::StreamEvent {
        self.status
            .lock()
            .expect("status lock")
            .event(pb::stream_event::Kind::EventsSkipped)
    }

    /// Tells the watchers that a feature failed while the stream goes on.
    /// Tells watchers that the publisher's clock jumped (the message says
    /// by how much); the state stays as it is.
    pub fn report_discontinuity(&self, message: impl Into<String>) {
        let mut status = self.status.lock().expect("status lock");
        status.message = message.into();
        self.publish(&mut status, pb::stream_event::Kind::TimelineDiscontinuity);
    }

    pub fn report_feature_error(&self, message: impl Into<String>) {
        let mut status = self.status.lock().expect("status lock");
        status.message = message.into();
        self.publish(&mut status, pb::stream_event::Kind::FeatureError);
    }

    /// Follows the processing options.
    pub fn processing(&self) -> watch::Receiver<Processing> {
        self.processing.subscribe()
    }

    /// Whether a publisher (or a pull) runs on this node now.
    pub fn has_publisher(&self) -> bool {
        self.publisher.lock().expect("publisher lock").is_some()
    }

    /// How the current publisher sends, if there is one.
    pub fn publisher_kind(&self) -> Option<PublisherKind> {
        self.publisher
            .lock()
            .expect("publisher lock")
            .as_ref()
            .map(|holder| holder.kind)
    }

    /// Takes the stream's publish key as the registry has it now. A key
    /// other than the one seen before disconnects the publisher that came
    /// with it (a pull has no key and goes on); says whether one was.
    pub fn set_publish_key(&self, key: &str) -> bool {
        let mut known = self.publish_key.lock().expect("publish key lock");
        let rotated = known.as_deref().is_some_and(|old| old != key);
        *known = Some(key.to_string());
        drop(known);
        if !rotated {
            return false;
        }
        match &*self.publisher.lock().expect("publisher lock") {
            Some(holder) if holder.kind != PublisherKind::Pull => {
                holder.let_go.tell(LetGo::KeyRotated);
                true
            }
            _ => false,
        }
    }

    /// Takes the publisher slot, or fails if another publisher has it.
    pub fn claim_publisher(
        self: &Arc<Self>,
        kind: PublisherKind,
        key: Option<&str>,
    ) -> Result<PublisherGuard> {
        let mut slot = self.publisher.lock().expect("publisher lock");
        // The key it was authorized with must still be the stream's: a
        // rotation between its authorization and now refuses it here (a
        // rotation after now finds it in the slot and disconnects it).
        let known = self.publish_key.lock().expect("publish key lock").clone();
        if let (Some(key), Some(known)) = (key, known) {
            if key != known {
                return Err(Error::KeyRotated {
                    stream_id: self.stream_ref.stream_id.clone(),
                });
            }
        }
        if slot.is_some() {
            return Err(Error::PublisherActive {
                stream_id: self.stream_ref.stream_id.clone(),
                node_id: None,
            });
        }
        let let_go = Arc::new(LetGoSignal::default());
        *slot = Some(Holder {
            kind,
            since: Instant::now(),
            let_go: Arc::clone(&let_go),
        });
        Ok(PublisherGuard {
            stream: Arc::clone(self),
            let_go,
        })
    }

    /// Cancelled when the stream is deleted or the server stops.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Cancelled when watchers should end: the stream was deleted, or the
    /// server is stopping and its sessions have ended.
    pub fn watchers_end(&self) -> &CancellationToken {
        &self.watchers_end
    }

    /// True once the stream was deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(Ordering::SeqCst)
    }

    /// Why calls following this stream end: it was deleted, or the server
    /// is stopping.
    pub fn end_reason(&self) -> Error {
        if self.is_deleted() {
            Error::stream_not_found(&self.stream_ref.stream_id)
        } else {
            Error::ShuttingDown
        }
    }
}

/// All streams the server knows, by [`StreamRef`].
pub struct StreamHub {
    streams: DashMap<StreamRef, Arc<LiveStream>>,
    stop_work: CancellationToken,
    end_watchers: CancellationToken,
    notices: broadcast::Sender<Notice>,
}

impl Default for StreamHub {
    fn default() -> Self {
        Self {
            streams: DashMap::new(),
            stop_work: CancellationToken::new(),
            end_watchers: CancellationToken::new(),
            notices: broadcast::channel(NOTICE_BUFFER).0,
        }
    }
}

impl StreamHub {
    /// The events of every stream, from now on.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Shutdown, step 1: every session and pull of every stream ends.
    pub fn stop_work(&self) {
        self.stop_work.cancel();
    }

    /// Shutdown, step 2: every watcher ends.
    pub fn end_watchers(&self) {
        self.end_watchers.cancel();
    }

    /// Adds a registered stream (at creation, at server start, or when
    /// another node created it); says whether it was added (false: it
    /// was here already, and is returned as it is).
    pub fn add(&self, stream_ref: StreamRef, processing: Processing) -> (Arc<LiveStream>, bool) {
        match self.streams.entry(stream_ref) {
            dashmap::Entry::Occupied(found) => (Arc::clone(found.get()), false),
            dashmap::Entry::Vacant(vacant) => {
                let stream = Arc::new(LiveStream::new(
                    vacant.key().clone(),
                    processing,
                    self.stop_work.child_token(),
                    self.end_watchers.child_token(),
                    self.notices.clone(),
                ));
                vacant.insert(Arc::clone(&stream));
                (stream, true)
            }
        }
    }

    /// Every stream on this node.
    pub fn all(&self) -> Vec<Arc<LiveStream>> {
        self.streams.iter().map(|s| Arc::clone(s.value())).collect()
    }

    /// How many streams this node knows.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    pub fn get(&self, stream_ref: &StreamRef) -> Option<Arc<LiveStream>> {
        self.streams.get(stream_ref).map(|s| Arc::clone(&s))
    }

    /// How many streams have a publisher (or a pull) on this node now.
    pub fn sessions(&self) -> usize {
        self.streams.iter().filter(|s| s.has_publisher()).count()
    }

    /// Lets the newest session on this node go for `reason` (the node is
    /// behind); returns its stream, or `None` when there is no session
    /// left that was not let go already.
    pub fn shed_newest(&self, reason: &str) -> Option<StreamRef> {
        let mut newest: Option<(Instant, StreamRef, Arc<LetGoSignal>)> = None;
        for stream in self.streams.iter() {
            let slot = stream.publisher.lock().expect("publisher lock");
            let Some(holder) = slot.as_ref().filter(|h| !h.let_go.told.is_cancelled()) else {
                continue;
            };
            if newest
                .as_ref()
                .is_none_or(|(since, ..)| holder.since > *since)
            {
                newest = Some((
                    holder.since,
                    stream.stream_ref.clone(),
                    Arc::clone(&holder.let_go),
                ));
            }
        }
        let (_, stream_ref, let_go) = newest?;
        let_go.tell(LetGo::Shed(reason.to_string()));
        Some(stream_ref)
    }

    /// Removes a deleted stream and stops whatever runs for it.
    pub fn remove(&self, stream_ref: &StreamRef) -> Option<Arc<LiveStream>> {
        let (_, stream) = self.streams.remove(stream_ref)?;
        stream.deleted.store(true, Ordering::SeqCst);
        stream.cancel.cancel();
        stream.watchers_end.cancel();
        Some(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A publisher authorized with a key that is rotated before it takes
    /// the slot is refused there; one with the new key is not.
    #[test]
    fn a_key_rotated_before_the_claim_is_refused() {
        let hub = StreamHub::default();
        let (stream, _) = hub.add(StreamRef::new("org", "cam"), Processing::default());
        stream.set_publish_key("sk_old");
        assert!(!stream.set_publish_key("sk_new"), "no publisher to let go");
        let refused = stream.claim_publisher(PublisherKind::Srt, Some("sk_old"));
        assert!(matches!(refused, Err(Error::KeyRotated { .. })));
        let taken = stream.claim_publisher(PublisherKind::Srt, Some("sk_new"));
        assert!(taken.is_ok());
        // A pull has no key.
        drop(taken);
        assert!(stream.claim_publisher(PublisherKind::Pull, None).is_ok());
    }

    /// Shedding lets the newest session go, once, and tells it why.
    #[tokio::test]
    async fn the_newest_session_is_shed_with_its_reason() {
        let hub = StreamHub::default();
        let (old, _) = hub.add(StreamRef::new("org", "old"), Processing::default());
        let (new, _) = hub.add(StreamRef::new("org", "new"), Processing::default());
        assert_eq!(hub.shed_newest("behind"), None, "no session yet");
        let old = old.claim_publisher(PublisherKind::Srt, None).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let new = new.claim_publisher(PublisherKind::Pull, None).unwrap();
        assert_eq!(
            hub.shed_newest("ingest 300 ms behind"),
            Some(StreamRef::new("org", "new"))
        );
        assert_eq!(
            new.let_go().await,
            LetGo::Shed("ingest 300 ms behind".into())
        );
        // One already going is not shed twice: the next newest is.
        assert_eq!(hub.shed_newest("again"), Some(StreamRef::new("org", "old")));
        assert_eq!(old.let_go().await, LetGo::Shed("again".into()));
        assert_eq!(hub.shed_newest("more"), None, "every session is going");
        drop(new);
    }
}
