//! `liveproc.v1.LiveProcessing`: an organization's streams, their
//! processing options, state events, gRPC media push, and the outputs of
//! their features (thumbnails, motion clips, replay, recordings).
//!
//! Calls about live data of a stream whose session runs on another node
//! (its events, thumbnails, motion clips, replay) are forwarded to that
//! node ([`crate::service::peers`]), so that every node answers them.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::StreamExt;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::subscriber::Subscriber;
use super::{recordings, replay, signed_urls, Services};
use crate::auth::Principal;
use crate::error::{Error, Result};
use crate::ids::{self, StreamRef};
use crate::ingest::push;
use crate::media::{now_millis, MediaError};
use crate::options::Processing;
use crate::proto::v1 as pb;
use crate::proto::v1::live_processing_client::LiveProcessingClient;
use crate::proto::v1::live_processing_server::LiveProcessing;
use crate::proto::v1::StreamState;
use crate::registry::{secrets, OrganizationRecord, StreamRecord};
use crate::service::audit::{self, action, Actor};
use crate::service::convert;
use crate::service::peers::{self, LiveAt};
use crate::streams::{LiveStream, PublisherKind};
use crate::validate;
use crate::webhooks::{event_types, events};
use serde_json::json;

type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Largest message a forwarded call takes from the other node (a motion
/// clip is a few megabytes).
const MAX_FORWARDED_MESSAGE: usize = 64 << 20;

/// Answers a call with the node holding the stream's session, when that
/// is another node: `stream` for a streaming answer, `unary` for one
/// message. When that node cannot be reached (it died, and its lease has
/// not lapsed yet) the call is answered here: this node may be the one
/// that takes the session over.
macro_rules! forward_to_holder {
    ($self:ident, $request:ident, $method:ident, $shape:ident) => {
        let $request = match $self.holder_client(&$request).await? {
            None => $request,
            Some(mut client) => {
                let copy = copy_request(&$request);
                match client.$method($self.forwarded($request)).await {
                    Ok(answer) => return Ok(forward_to_holder!(@answer answer, $shape)),
                    Err(status) if status.code() == tonic::Code::Unavailable => {
                        tracing::debug!(error = %status, "the session's node is unreachable; answering here");
                        copy
                    }
                    Err(status) => return Err(status),
                }
            }
        };
    };
    (@answer $answer:ident, stream) => {
        Response::new(Box::pin($answer.into_inner()))
    };
    (@answer $answer:ident, unary) => {
        Response::new($answer.into_inner())
    };
}

/// A copy of `request` (its metadata and message).
fn copy_request<T: Clone>(request: &Request<T>) -> Request<T> {
    let mut copy = Request::new(request.get_ref().clone());
    *copy.metadata_mut() = request.metadata().clone();
    copy
}

/// Requests about one stream.
trait AboutStream {
    fn stream_id(&self) -> &str;
}

macro_rules! about_stream {
    ($($message:ty),*) => {
        $(impl AboutStream for $message {
            fn stream_id(&self) -> &str {
                &self.stream_id
            }
        })*
    };
}

about_stream!(
    pb::WatchStreamRequest,
    pb::SubscribeThumbnailsRequest,
    pb::GetThumbnailRequest,
    pb::SubscribeMotionClipsRequest,
    pb::SubscribeReplayRequest,
    pb::CreateReplayClipRequest
);

/// Events buffered per watcher before the watcher counts as slow.
const WATCH_BUFFER: usize = 32;
/// Items (thumbnails, clips) buffered per subscriber.
const FEED_SUBSCRIBER_BUFFER: usize = 4;

pub struct LiveProcessingService {
    state: Services,
}

impl LiveProcessingService {
    pub fn new(state: Services) -> Self {
        Self { state }
    }

    /// Records a change to the stream `record`.
    async fn audit(
        &self,
        actor: &Actor,
        record: &StreamRecord,
        action: &str,
        details: serde_json::Value,
    ) {
        let resource = format!("streams/{}", record.id);
        audit::record(
            &self.state.registry,
            actor,
            &record.organization_id,
            action,
            resource,
            details,
        )
        .await;
    }

    /// The calling organization (org API key required).
    async fn organization(
        &self,
        metadata: &tonic::metadata::MetadataMap,
    ) -> Result<OrganizationRecord> {
        let id = self.state.auth.require_organization(metadata).await?;
        self.state
            .registry
            .organization(&id)
            .await?
            .ok_or(Error::Unauthenticated)
    }

    /// A stream of the calling organization; another organization's stream
    /// is NOT_FOUND, exactly like a missing one.
    async fn stream_record(&self, org_id: &str, stream_id: &str) -> Result<StreamRecord> {
        validate::stream_id("stream_id", stream_id)?;
        self.state
            .registry
            .stream(org_id, stream_id)
            .await?
            .ok_or_else(|| Error::stream_not_found(stream_id))
    }

    async fn to_api(&self, record: &StreamRecord) -> Result<pb::Stream> {
        let stream_ref = StreamRef::new(&record.organization_id, &record.id);
        let live = self.state.hub.get(&stream_ref);
        let mut state = live.as_ref().map_or(StreamState::Idle, |s| s.state());
        let stats = live
            .as_ref()
            .and_then(|s| s.session_stats())
            .map(|s| s.to_proto());
        let replay_window = self
            .state
            .features
            .outputs(&stream_ref)
            .ok()
            .and_then(|o| replay::window_of(&o.replay));
        // The lease says where the session runs (a local publisher slot
        // is taken a moment before the lease is asked for).
        let this_node = &self.state.ingest.cluster.node().id;
        let holder = self.state.registry.lease_holder(&stream_ref).await?;
        let node_id = holder.map(|h| h.node_id).unwrap_or_default();
        if !node_id.is_empty() && node_id != *this_node && state != StreamState::Live {
            // Its session runs on another node.
            state = StreamState::Live;
        }
        let mut stream = convert::stream(
            record,
            state,
            stats,
            replay_window,
            &self.state.ingest_addrs,
        );
        stream.node_id = node_id;
        Ok(stream)
    }

    /// A client of the node holding the session of the stream `request`
    /// is about, when that is another node (never for a call forwarded
    /// already).
    async fn holder_client<T: AboutStream>(
        &self,
        request: &Request<T>,
    ) -> Result<Option<LiveProcessingClient<Channel>>> {
        if request.metadata().contains_key(peers::FORWARDED) {
            return Ok(None);
        }
        let org = self.organization(request.metadata()).await?;
        let stream_id = request.get_ref().stream_id();
        validate::stream_id("stream_id", stream_id)?;
        let at = self
            .state
            .peers
            .live_at(&StreamRef::new(&org.id, stream_id))
            .await?;
        Ok(match at {
            LiveAt::Here => None,
            LiveAt::Peer(peer) => {
                tracing::debug!(stream = stream_id, node = %peer.node_id, "forwarding to the session's node");
                Some(
                    LiveProcessingClient::new(peer.channel)
                        .max_decoding_message_size(MAX_FORWARDED_MESSAGE),
                )
            }
        })
    }

    /// `request` as this node forwards it: the caller's metadata (its API
    /// key), marked as forwarded.
    fn forwarded<T>(&self, request: Request<T>) -> Request<T> {
        let (mut metadata, _, message) = request.into_parts();
        let by = MetadataValue::try_from(self.state.peers.node_id())
            .unwrap_or_else(|_| MetadataValue::from_static("node"));
        metadata.insert(peers::FORWARDED, by);
        Request::from_parts(metadata, tonic::Extensions::default(), message)
    }

    /// The running side of a stream of the calling organization.
    async fn live_stream(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        stream_id: &str,
    ) -> Result<Arc<LiveStream>> {
        let org = self.organization(metadata).await?;
        let record = self.stream_record(&org.id, stream_id).await?;
        Ok(self.state.ingest.live(&record))
    }

    /// Authorizes the first `PushMedia` message: the stream key always; an
    /// API key, when sent, must be valid and own the stream.
    async fn authorize_push(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        first: &pb::PushMediaRequest,
    ) -> Result<Arc<LiveStream>> {
        validate::stream_id("stream_id", &first.stream_id)?;
        validate::id("stream_key", &first.stream_key)?;
        let caller = match crate::auth::bearer_key(metadata) {
            Some(key) => Some(
                self.state
                    .auth
                    .principal_for_key(key)
                    .await?
                    .ok_or(Error::Unauthenticated)?,
            ),
            None => None,
        };
        let stream = self
            .state
            .ingest
            .authorize_publish(&first.stream_id, &first.stream_key)
            .await?;
        match caller {
            Some(Principal::Organization(org)) if org != stream.stream_ref.organization_id => {
                Err(Error::stream_not_found(&first.stream_id))
            }
            _ => Ok(stream),
        }
    }
}

#[tonic::async_trait]
impl LiveProcessing for LiveProcessingService {
    async fn create_stream(
        &self,
        request: Request<pb::CreateStreamRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let req = request.into_inner();
        let id = if req.stream_id.is_empty() {
            ids::new_stream_id()
        } else {
            validate::stream_id("stream_id", &req.stream_id)?;
            req.stream_id
        };
        validate::name("name", &req.name)?;
        let processing = validate::processing("processing", req.processing.as_ref())?;
        let source_uri = (!req.source_uri.is_empty()).then_some(req.source_uri);
        if let Some(uri) = &source_uri {
            self.state
                .ingest
                .pull_policy
                .check(uri)
                .map_err(|refused| Error::invalid("source_uri", refused.to_string()))?;
        }
        let mut srt_encryption =
            validate::srt_encryption("srt_encryption", req.srt_encryption.as_ref())?;
        if srt_encryption.is_some() && source_uri.is_some() {
            return Err(Error::invalid(
                "srt_encryption",
                "a pulled stream (source_uri) takes no SRT publisher",
            )
            .into());
        }
        if let Some(encryption) = srt_encryption.as_mut().filter(|e| e.passphrase.is_empty()) {
            encryption.passphrase = secrets::new_srt_passphrase();
        }
        org.check_packages(&processing)?;
        if processing.replay.is_some() {
            self.state.features.usage().of(&org.id).check_replay()?;
        }

        let record = StreamRecord {
            id,
            organization_id: org.id.clone(),
            name: req.name,
            processing,
            stream_key: secrets::new_stream_key(),
            source_uri,
            create_time_ms: now_millis(),
            srt_encryption,
        };
        self.state
            .registry
            .create_stream(&record, Some(&org))
            .await?;
        let live = self.state.ingest.add_stream(&record);
        tracing::info!(stream = %live.stream_ref, source = ?record.source_uri.as_deref().map(crate::redact::uri), "stream created");
        let details = json!({
            "source_uri": record.source_uri.as_deref().map(crate::redact::uri),
            "srt_encryption": record.srt_encryption.as_ref().map(|e| e.key_length),
            "features": record.processing.enabled_features().collect::<Vec<_>>(),
        });
        self.audit(&actor, &record, action::STREAM_CREATE, details)
            .await;
        Ok(Response::new(self.to_api(&record).await?))
    }

    async fn get_stream(
        &self,
        request: Request<pb::GetStreamRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let record = self
            .stream_record(&org.id, &request.get_ref().stream_id)
            .await?;
        Ok(Response::new(self.to_api(&record).await?))
    }

    async fn list_streams(
        &self,
        request: Request<pb::ListStreamsRequest>,
    ) -> Result<Response<pb::ListStreamsResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let req = request.into_inner();
        let page_size = validate::page_size("page_size", req.page_size)?;
        let page = self
            .state
            .registry
            .list_streams(&org.id, &req.page_token, page_size)
            .await?;
        Ok(Response::new(pb::ListStreamsResponse {
            streams: futures::future::try_join_all(page.items.iter().map(|r| self.to_api(r)))
                .await?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_stream(
        &self,
        request: Request<pb::DeleteStreamRequest>,
    ) -> Result<Response<pb::DeleteStreamResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let stream_id = &request.get_ref().stream_id;
        validate::stream_id("stream_id", stream_id)?;
        let record = self
            .state
            .registry
            .delete_stream(&org.id, stream_id)
            .await?;
        let stream_ref = StreamRef::new(&record.organization_id, &record.id);
        self.state.ingest.remove_stream(&stream_ref);
        tracing::info!(stream = %stream_ref, "stream deleted");
        self.audit(
            &actor,
            &record,
            action::STREAM_DELETE,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(pb::DeleteStreamResponse {}))
    }

    async fn rotate_stream_key(
        &self,
        request: Request<pb::RotateStreamKeyRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let stream_id = &request.get_ref().stream_id;
        validate::stream_id("stream_id", stream_id)?;
        let record = self
            .state
            .registry
            .rotate_stream_key(&org.id, stream_id)
            .await?;
        // This node's publisher goes now; another node's when the change
        // reaches it (it follows the registry).
        self.state.ingest.sync_stream(&record);
        tracing::info!(stream = %StreamRef::new(&record.organization_id, &record.id), "stream key rotated");
        self.audit(
            &actor,
            &record,
            action::STREAM_KEY_ROTATE,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(self.to_api(&record).await?))
    }

    async fn update_processing(
        &self,
        request: Request<pb::UpdateProcessingRequest>,
    ) -> Result<Response<pb::Stream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let req = request.into_inner();
        let before = self.stream_record(&org.id, &req.stream_id).await?;
        let processing: Processing = validate::processing("processing", req.processing.as_ref())?;
        org.check_packages(&processing)?;
        if processing.replay.is_some() && before.processing.replay.is_none() {
            self.state.features.usage().of(&org.id).check_replay()?;
        }
        let changed = StreamRecord {
            processing: processing.clone(),
            ..before
        };
        let event = events::stream(
            event_types::STREAM_PROCESSING_CHANGED,
            &self.to_api(&changed).await?,
            "",
        );
        let record = self
            .state
            .registry
            .set_processing(&org.id, &req.stream_id, &processing, Some(&event))
            .await?;
        let stream_ref = StreamRef::new(&record.organization_id, &record.id);
        if let Some(live) = self.state.hub.get(&stream_ref) {
            live.set_processing(record.processing.clone());
        }
        tracing::info!(stream = %stream_ref, features = ?processing.enabled_features().collect::<Vec<_>>(), "processing updated");
        let details = json!({"features": processing.enabled_features().collect::<Vec<_>>()});
        self.audit(&actor, &record, action::PROCESSING_UPDATE, details)
            .await;
        Ok(Response::new(self.to_api(&record).await?))
    }

    type WatchStreamStream = ResponseStream<pb::StreamEvent>;

    async fn watch_stream(
        &self,
        request: Request<pb::WatchStreamRequest>,
    ) -> Result<Response<Self::WatchStreamStream>, Status> {
        forward_to_holder!(self, request, watch_stream, stream);
        let org = self.organization(request.metadata()).await?;
        let record = self
            .stream_record(&org.id, &request.get_ref().stream_id)
            .await?;
        let live = self.state.ingest.live(&record);
        let (snapshot, mut events) = live.watch();
        let (subscriber, responses) = Subscriber::new(Arc::clone(&live), WATCH_BUFFER);
        tokio::spawn(async move {
            let mut next = Some(snapshot);
            while let Some(event) = next.take() {
                if !subscriber.send(event).await {
                    return;
                }
                next = match subscriber.wait(events.recv()).await {
                    Some(Ok(event)) => Some(event),
                    Some(Err(RecvError::Lagged(_))) => Some(live.skipped_event()),
                    Some(Err(RecvError::Closed)) | None => None,
                };
            }
        });
        Ok(Response::new(Box::pin(responses)))
    }

    async fn push_media(
        &self,
        request: Request<Streaming<pb::PushMediaRequest>>,
    ) -> Result<Response<pb::PushMediaResponse>, Status> {
        let metadata = request.metadata().clone();
        let mut messages = request.into_inner();
        let first = match messages.next().await {
            Some(message) => message?,
            None => {
                return Err(Error::invalid("stream_id", "is required in the first message").into())
            }
        };
        let stream = self.authorize_push(&metadata, &first).await?;
        let span = tracing::info_span!("stream", organization = %stream.stream_ref.organization_id, stream = %stream.stream_ref.stream_id, ingest = "push");
        let session = self
            .state
            .ingest
            .start_session(stream, PublisherKind::GrpcPush, &first.stream_key)
            .instrument(span.clone())
            .await?;
        let rest = messages.map(|m| m.map(|m| m.data));
        // Tracked with the other sessions so that shutdown waits for it.
        let run = push::run(session, first.data, rest).instrument(span);
        let bytes_received =
            self.state.ingest.sessions.spawn(run).await.map_err(|e| {
                Error::from(MediaError::Pipeline(format!("push session task: {e}")))
            })??;
        Ok(Response::new(pb::PushMediaResponse { bytes_received }))
    }

    type SubscribeThumbnailsStream = ResponseStream<pb::Thumbnail>;

    async fn subscribe_thumbnails(
        &self,
        request: Request<pb::SubscribeThumbnailsRequest>,
    ) -> Result<Response<Self::SubscribeThumbnailsStream>, Status> {
        forward_to_holder!(self, request, subscribe_thumbnails, stream);
        let req = request.get_ref();
        let live = self.live_stream(request.metadata(), &req.stream_id).await?;
        let (latest, rx) = self
            .state
            .features
            .outputs(&live.stream_ref)?
            .thumbnails
            .subscribe();
        let first = latest.filter(|_| req.send_latest);
        Ok(Response::new(follow_feed(live, first, rx)))
    }

    async fn get_thumbnail(
        &self,
        request: Request<pb::GetThumbnailRequest>,
    ) -> Result<Response<pb::Thumbnail>, Status> {
        forward_to_holder!(self, request, get_thumbnail, unary);
        let req = request.get_ref();
        let live = self.live_stream(request.metadata(), &req.stream_id).await?;
        if let Some(at) = &req.at {
            return Ok(Response::new(
                crate::service::thumbnails::at(
                    &self.state,
                    &live,
                    crate::proto::timestamp_to_millis(at),
                )
                .await?,
            ));
        }
        let outputs = self.state.features.outputs(&live.stream_ref)?;
        outputs
            .thumbnails
            .latest()
            .map(Response::new)
            .ok_or_else(|| {
                Error::NotFound {
                    kind: "thumbnail",
                    name: req.stream_id.clone(),
                }
                .into()
            })
    }

    type SubscribeMotionClipsStream = ResponseStream<pb::MotionClip>;

    async fn subscribe_motion_clips(
        &self,
        request: Request<pb::SubscribeMotionClipsRequest>,
    ) -> Result<Response<Self::SubscribeMotionClipsStream>, Status> {
        forward_to_holder!(self, request, subscribe_motion_clips, stream);
        let req = request.get_ref();
        let live = self.live_stream(request.metadata(), &req.stream_id).await?;
        let (latest, rx) = self
            .state
            .features
            .outputs(&live.stream_ref)?
            .motion_clips
            .subscribe();
        let first = latest.filter(|_| req.send_latest);
        Ok(Response::new(follow_feed(live, first, rx)))
    }

    type SubscribeReplayStream = ResponseStream<pb::ReplaySegment>;

    async fn subscribe_replay(
        &self,
        request: Request<pb::SubscribeReplayRequest>,
    ) -> Result<Response<Self::SubscribeReplayStream>, Status> {
        forward_to_holder!(self, request, subscribe_replay, stream);
        let req = request.get_ref();
        let live = self.live_stream(request.metadata(), &req.stream_id).await?;
        let segments = replay::subscribe(&self.state, live, req)?;
        Ok(Response::new(Box::pin(segments)))
    }

    async fn create_replay_clip(
        &self,
        request: Request<pb::CreateReplayClipRequest>,
    ) -> Result<Response<pb::ReplayClip>, Status> {
        forward_to_holder!(self, request, create_replay_clip, unary);
        let req = request.get_ref();
        let live = self.live_stream(request.metadata(), &req.stream_id).await?;
        Ok(Response::new(
            replay::create_clip(&self.state, &live, req).await?,
        ))
    }

    async fn create_session_clip(
        &self,
        request: Request<pb::CreateSessionClipRequest>,
    ) -> Result<Response<pb::ReplayClip>, Status> {
        let org = self.organization(request.metadata()).await?;
        let req = request.get_ref();
        self.stream_record(&org.id, &req.stream_id).await?;
        Ok(Response::new(
            replay::create_session_clip(&self.state, &org.id, req).await?,
        ))
    }

    async fn get_replay_clip(
        &self,
        request: Request<pb::GetReplayClipRequest>,
    ) -> Result<Response<pb::ReplayClip>, Status> {
        let org = self.organization(request.metadata()).await?;
        let clip =
            crate::service::clips::find(&self.state, &org.id, &request.get_ref().clip_id).await?;
        Ok(Response::new(crate::service::clips::to_proto(&clip)))
    }

    async fn list_replay_clips(
        &self,
        request: Request<pb::ListReplayClipsRequest>,
    ) -> Result<Response<pb::ListReplayClipsResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let req = request.into_inner();
        self.stream_record(&org.id, &req.stream_id).await?;
        Ok(Response::new(
            replay::list_clips(&self.state, &org.id, &req).await?,
        ))
    }

    type DownloadReplayClipStream = ResponseStream<pb::DataChunk>;

    async fn download_replay_clip(
        &self,
        request: Request<pb::DownloadReplayClipRequest>,
    ) -> Result<Response<Self::DownloadReplayClipStream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let chunks = replay::download_clip(&self.state, &org.id, request.get_ref()).await?;
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn delete_replay_clip(
        &self,
        request: Request<pb::DeleteReplayClipRequest>,
    ) -> Result<Response<pb::DeleteReplayClipResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let id = &request.get_ref().clip_id;
        crate::service::clips::delete(&self.state, &org.id, id).await?;
        let resource = format!("clips/{id}");
        audit::record(
            &self.state.registry,
            &actor,
            &org.id,
            action::CLIP_DELETE,
            resource,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(pb::DeleteReplayClipResponse {}))
    }

    async fn list_recordings(
        &self,
        request: Request<pb::ListRecordingsRequest>,
    ) -> Result<Response<pb::ListRecordingsResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let req = request.into_inner();
        self.stream_record(&org.id, &req.stream_id).await?;
        Ok(Response::new(
            recordings::list(&self.state, &org.id, &req).await?,
        ))
    }

    async fn get_recording(
        &self,
        request: Request<pb::GetRecordingRequest>,
    ) -> Result<Response<pb::Recording>, Status> {
        let org = self.organization(request.metadata()).await?;
        let id = &request.get_ref().recording_id;
        Ok(Response::new(
            recordings::get(&self.state, &org.id, id).await?,
        ))
    }

    type DownloadRecordingStream = ResponseStream<pb::DataChunk>;

    async fn download_recording(
        &self,
        request: Request<pb::DownloadRecordingRequest>,
    ) -> Result<Response<Self::DownloadRecordingStream>, Status> {
        let org = self.organization(request.metadata()).await?;
        let chunks = recordings::download(&self.state, &org.id, request.get_ref()).await?;
        Ok(Response::new(Box::pin(chunks)))
    }

    async fn delete_recording(
        &self,
        request: Request<pb::DeleteRecordingRequest>,
    ) -> Result<Response<pb::DeleteRecordingResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        let actor = Actor::organization(&org.id, request.remote_addr());
        let id = &request.get_ref().recording_id;
        crate::service::recordings::delete(&self.state, &org.id, id).await?;
        let resource = format!("recordings/{id}");
        audit::record(
            &self.state.registry,
            &actor,
            &org.id,
            action::RECORDING_DELETE,
            resource,
            serde_json::Value::Null,
        )
        .await;
        Ok(Response::new(pb::DeleteRecordingResponse {}))
    }

    async fn sign_url(
        &self,
        request: Request<pb::SignUrlRequest>,
    ) -> Result<Response<pb::SignUrlResponse>, Status> {
        let org = self.organization(request.metadata()).await?;
        Ok(Response::new(
            signed_urls::sign(&self.state, &org.id, request.get_ref()).await?,
        ))
    }
}

/// Streams a feed to one subscriber: `first` (the latest, when asked for),
/// then every new item. A subscriber that does not keep up skips items (the
/// gap shows in `sequence`) and never slows the stream or other
/// subscribers. Ends when the stream is deleted or the server stops.
fn follow_feed<T: Clone + Send + 'static>(
    live: Arc<LiveStream>,
    first: Option<T>,
    mut items: tokio::sync::broadcast::Receiver<T>,
) -> ResponseStream<T> {
    let (subscriber, responses) = Subscriber::new(live, FEED_SUBSCRIBER_BUFFER);
    tokio::spawn(async move {
        let mut next = first;
        loop {
            if let Some(item) = next.take() {
                if !subscriber.send(item).await {
                    return;
                }
            }
            next = match subscriber.wait(items.recv()).await {
                Some(Ok(item)) => Some(item),
                Some(Err(RecvError::Lagged(_))) => None,
                Some(Err(RecvError::Closed)) | None => return,
            };
        }
    });
    Box::pin(responses)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::features::feed::Feed;
    use crate::streams::StreamHub;

    /// A subscriber that stops reading holds at most its own small buffers:
    /// the feed keeps publishing, another subscriber gets every item in
    /// order meanwhile, and when the stalled one reads again it skips to
    /// the newest items, with the gap visible in their sequence.
    #[tokio::test]
    async fn a_stalled_subscriber_skips_ahead_and_holds_nothing_up() {
        let hub = StreamHub::default();
        let (live, _) = hub.add(StreamRef::new("org", "cam"), Processing::default());
        let feed: Feed<u64> = Feed::default();
        let mut reader = follow_feed(Arc::clone(&live), None, feed.subscribe().1);
        let mut stalled = follow_feed(Arc::clone(&live), None, feed.subscribe().1);

        const ITEMS: u64 = 200;
        for n in 1..=ITEMS {
            assert_eq!(feed.publish(|sequence| sequence), n);
            let got = tokio::time::timeout(Duration::from_secs(5), reader.next())
                .await
                .expect("the reader is never held up");
            assert_eq!(got.unwrap().unwrap(), n);
        }
        // The feed ends (the stream's producer is gone): both streams end
        // once drained.
        drop(feed);
        let mut resumed = vec![];
        while let Some(item) = stalled.next().await {
            resumed.push(item.unwrap());
        }
        assert!(
            resumed.len() <= FEED_SUBSCRIBER_BUFFER + 32,
            "the stalled subscriber held {} items",
            resumed.len()
        );
        assert_eq!(resumed.first(), Some(&1), "{resumed:?}");
        assert_eq!(resumed.last(), Some(&ITEMS), "{resumed:?}");
        assert!(
            resumed.windows(2).any(|w| w[1] > w[0] + 1),
            "no sequence gap: {resumed:?}"
        );
        assert!(resumed.windows(2).all(|w| w[1] > w[0]), "{resumed:?}");
        assert!(reader.next().await.is_none());
    }
}
