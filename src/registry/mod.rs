//! The registry: organizations, their API keys (hashed), packages, streams
//! with their processing options, the recording and clip catalogue and the
//! server's settings (admin key hash, URL-signing key).
//!
//! One interface, [`Registry`], over two backends:
//! - [`embedded`]: a `redb` file in the data dir, the single-node default
//!   (`make run` needs nothing else);
//! - [`postgres`]: a PostgreSQL database shared by every node
//!   (`--database-url`), its schema migrated at start.
//!
//! Every change is one transaction committed before the call returns, so
//! it survives a crash or `kill -9` of the server. Streams are scoped by
//! organization, so two organizations may use the same client-chosen
//! stream id and neither can learn that the other's exists. Listings page
//! in id order (byte order), with the last id of a page as the token of
//! the next; both backends give the same pages.
//!
//! The methods are async: the PostgreSQL backend waits on the network,
//! the embedded one on its disk (its commits run as blocking work).

pub mod cluster;
mod embedded;
mod postgres;
mod records;
pub mod secrets;
pub mod webhooks;

use std::path::Path;

pub use embedded::EmbeddedRegistry;
pub use postgres::{PgRegistry, PgStreamChanges};
pub use records::{
    now_millis, AuditEvent, ClipRecord, OrganizationRecord, Quota, Quotas, RecordingPart,
    RecordingRecord, RecordingState, SrtEncryption, StreamRecord,
};

use crate::error::Result;
use crate::ids::StreamRef;
use crate::options::Processing;
use cluster::{Fence, Lease, LeaseGrant, LeaseHolder, NodeRecord};
use std::time::Duration;
use webhooks::{
    AttemptResult, Disabled, WebhookAttempt, WebhookEndpointRecord, WebhookEvent, WebhookMessage,
};

/// A change to the streams table made by any node ([`Registry::stream_changes`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamChange {
    /// Created or changed (its processing options): read it again.
    Changed(StreamRef),
    Deleted(StreamRef),
    /// Changes may have been missed: read every stream again.
    Resync,
}

/// A page of a listing and the token of the next page (empty at the end).
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_page_token: String,
}

/// Names of the server settings kept in the registry.
pub mod setting {
    /// SHA-256 (hex) of the admin key.
    pub const ADMIN_KEY_HASH: &str = "admin_key_hash";
    /// The key signed URLs are made with (hex), shared by every node.
    pub const URL_SIGNING_KEY: &str = "url_signing_key";
}

/// The registry, whichever backend holds it; cheap to share behind an
/// `Arc`.
pub struct Registry {
    backend: Backend,
}

enum Backend {
    Embedded(Box<EmbeddedRegistry>),
    Postgres(PgRegistry),
}

impl Registry {
    /// Opens (or creates) the embedded registry at `path`.
    pub fn open_embedded(path: &Path) -> Result<Self> {
        Ok(Self {
            backend: Backend::Embedded(Box::new(EmbeddedRegistry::open(path)?)),
        })
    }

    /// Connects to the PostgreSQL registry at `url` and brings its schema
    /// up to date.
    pub async fn connect_postgres(url: &str) -> Result<Self> {
        Ok(Self {
            backend: Backend::Postgres(PgRegistry::connect(url).await?),
        })
    }

    /// Whether the registry is shared with other nodes (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Postgres(_))
    }

    /// Which backend this is, for logs.
    pub fn describe(&self) -> &'static str {
        match self.backend {
            Backend::Embedded(_) => "embedded",
            Backend::Postgres(_) => "postgresql",
        }
    }

    /// The changes to streams made through every node, as they are
    /// committed; `None` with the embedded registry (one node: its own
    /// changes are applied where they are made).
    pub async fn stream_changes(&self) -> Result<Option<PgStreamChanges>> {
        match &self.backend {
            Backend::Embedded(_) => Ok(None),
            Backend::Postgres(r) => Ok(Some(r.stream_changes().await?)),
        }
    }

    /// Hash of the admin key, if one was stored.
    pub async fn admin_key_hash(&self) -> Result<Option<String>> {
        self.setting(setting::ADMIN_KEY_HASH).await
    }

    pub async fn set_admin_key_hash(&self, hash: &str) -> Result<()> {
        self.set_setting(setting::ADMIN_KEY_HASH, hash).await
    }
}

/// Forwards each method to the backend: the embedded one answers at once,
/// the PostgreSQL one is awaited.
macro_rules! forward {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        impl Registry {
            $(
                $(#[$doc])*
                pub async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                    match &self.backend {
                        Backend::Embedded(r) => r.$name($($arg),*),
                        Backend::Postgres(r) => r.$name($($arg),*).await,
                    }
                }
            )*
        }
    };
}

forward! {
    /// Whether a write can be made now (the health check).
    fn probe_write(&self) -> ();

    /// A server setting (see [`setting`]).
    fn setting(&self, name: &str) -> Option<String>;
    fn set_setting(&self, name: &str, value: &str) -> ();
    /// The setting's value, storing `value` first if it has none (so that
    /// nodes starting together agree on one).
    fn setting_or_insert(&self, name: &str, value: &str) -> String;

    /// Creates an organization and returns it with its new API key (the
    /// only time the key is seen in clear).
    fn create_organization(&self, name: &str, live_processing: bool) -> (OrganizationRecord, String);
    fn organization(&self, id: &str) -> Option<OrganizationRecord>;
    /// Stores an organization as it is (id, key hash), unless one with its
    /// id exists; says whether it was stored (`liveproc migrate`).
    fn import_organization(&self, record: &OrganizationRecord) -> bool;
    /// The organization an API key belongs to.
    fn organization_for_api_key(&self, api_key: &str) -> Option<String>;
    fn list_organizations(&self, page_token: &str, page_size: usize) -> Page<OrganizationRecord>;
    fn set_live_processing(&self, id: &str, enabled: bool) -> OrganizationRecord;
    /// Replaces the API key of an organization; the old one stops working,
    /// and so do the URLs it signed.
    fn rotate_api_key(&self, id: &str) -> (OrganizationRecord, String);
    /// Refuses every URL the organization signed until now.
    fn rotate_url_signing(&self, id: &str) -> OrganizationRecord;
    fn set_quotas(&self, id: &str, quotas: &Quotas) -> OrganizationRecord;
    /// Bytes of the organization's recordings and clips, as catalogued.
    fn stored_bytes(&self, org_id: &str) -> u64;
    /// Sessions of the organization's streams live now, on any node,
    /// but `except_stream`'s (empty: all).
    fn live_sessions(&self, org_id: &str, except_stream: &str) -> u64;

    /// Stores a new stream; `AlreadyExists` if the organization has one
    /// with the same id, `QuotaExceeded` if `quota` (the organization)
    /// has its quota of streams.
    fn create_stream(&self, record: &StreamRecord, quota: Option<&OrganizationRecord>) -> ();
    fn stream_count(&self, org_id: &str) -> u64;
    fn stream(&self, org_id: &str, stream_id: &str) -> Option<StreamRecord>;
    /// The stream a publish key belongs to.
    fn stream_for_publish_key(&self, publish_key: &str) -> Option<StreamRecord>;
    fn list_streams(&self, org_id: &str, page_token: &str, page_size: usize) -> Page<StreamRecord>;
    /// Every stream of every organization (server start-up).
    fn all_streams(&self) -> Vec<StreamRecord>;
    /// Deletes a stream; `NotFound` if the organization has none by that id.
    fn delete_stream(&self, org_id: &str, stream_id: &str) -> StreamRecord;
    /// Gives a stream a new publish key; the old one stops at once.
    fn rotate_stream_key(&self, org_id: &str, stream_id: &str) -> StreamRecord;
    /// Replaces the processing options of a stream, queuing `event` in
    /// the same transaction ([`webhooks`]).
    fn set_processing(&self, org_id: &str, stream_id: &str, processing: &Processing, event: Option<&WebhookEvent>) -> StreamRecord;

    /// Adds or replaces a recording in the catalogue; `Fenced` when its
    /// writer lost it ([`cluster`]). `event` is queued in the same
    /// transaction, when the write is made.
    fn put_recording(&self, record: &RecordingRecord, event: Option<&WebhookEvent>) -> ();
    /// Makes `to` the writer of a recording whose writer (as `record`
    /// names it) is gone, to finish it; false when another node was first
    /// or it is finished already.
    fn take_over_recording(&self, record: &RecordingRecord, to: &Fence) -> bool;
    /// A recording of the organization's, by id.
    fn recording(&self, org_id: &str, id: &str) -> Option<RecordingRecord>;
    /// The recordings of one stream, oldest first.
    fn list_recordings(&self, org_id: &str, stream_id: &str, page_token: &str, page_size: usize) -> Page<RecordingRecord>;
    /// The recordings of one publishing session of a stream, oldest first.
    fn session_recordings(&self, org_id: &str, stream_id: &str, session_id: &str) -> Vec<RecordingRecord>;
    /// The stream's recording that holds the wall-clock time `at_ms`: the
    /// newest that started at or before it, if it had not ended before it
    /// (one being recorded holds everything since its start).
    fn recording_at(&self, org_id: &str, stream_id: &str, at_ms: i64) -> Option<RecordingRecord>;
    fn delete_recording(&self, record: &RecordingRecord) -> ();
    /// Every recording still marked as being written (after a crash).
    fn unfinished_recordings(&self) -> Vec<RecordingRecord>;
    /// Records a part of a recording in object storage; `Fenced` unless
    /// `writer` still writes it.
    fn put_recording_part(&self, writer: &Fence, part: &RecordingPart) -> ();
    /// The parts of a recording in object storage, in order.
    fn recording_parts(&self, recording_id: &str) -> Vec<RecordingPart>;
    /// Recordings not yet wholly in object storage, oldest first.
    fn recordings_to_upload(&self) -> Vec<RecordingRecord>;

    /// Stores a clip; one cut by a session (`writer`) is `Fenced` once
    /// another node took the stream over. `event` is queued in the same
    /// transaction, when the write is made.
    fn put_clip(&self, clip: &ClipRecord, writer: Option<&Fence>, event: Option<&WebhookEvent>) -> ();
    fn clip(&self, org_id: &str, id: &str) -> Option<ClipRecord>;
    fn list_clips(&self, org_id: &str, stream_id: &str, page_token: &str, page_size: usize) -> Page<ClipRecord>;
    fn delete_clip(&self, clip: &ClipRecord) -> ();

    /// Registers this node, or says it is still there ([`cluster`]).
    fn heartbeat_node(&self, node: &NodeRecord) -> ();
    /// Every node that registered, with the age of its last heartbeat.
    fn list_nodes(&self) -> Vec<NodeRecord>;
    /// Takes a stream's live session for `node_id` for `ttl`, unless
    /// another node holds it (a node may take its own back, with the next
    /// epoch). A lease another node let lapse without giving it up is
    /// taken only when `take_lapsed`.
    fn acquire_lease(&self, stream: &StreamRef, node_id: &str, ttl: Duration, take_lapsed: bool) -> LeaseGrant;
    /// Extends a lease for `ttl`; `false` when another node took it over.
    fn renew_lease(&self, lease: &Lease, ttl: Duration) -> bool;
    /// Gives a lease up (the session ended).
    fn release_lease(&self, lease: &Lease) -> ();
    /// The node holding a stream's live session now.
    fn lease_holder(&self, stream: &StreamRef) -> Option<LeaseHolder>;

    /// Appends an event to the audit log.
    fn record_audit(&self, event: &AuditEvent) -> ();
    /// The audit log, newest first: every organization's (`None`) or
    /// one's; the page token is the last id of the page before.
    fn list_audit_events(&self, org_id: Option<&str>, page_token: &str, page_size: usize) -> Page<AuditEvent>;
    /// Deletes up to `limit` of the events recorded before `before_ms`,
    /// oldest first; returns how many.
    fn prune_audit_events(&self, before_ms: i64, limit: usize) -> u64;

    fn create_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> ();
    /// An organization's endpoints, in id order.
    fn webhook_endpoints(&self, org_id: &str) -> Vec<WebhookEndpointRecord>;
    fn webhook_endpoint(&self, org_id: &str, id: &str) -> Option<WebhookEndpointRecord>;
    /// Replaces an endpoint's settings; false when it is gone.
    fn update_webhook_endpoint(&self, record: &WebhookEndpointRecord) -> bool;
    /// Deletes an endpoint with the messages still waiting for it; false
    /// when there was none.
    fn delete_webhook_endpoint(&self, org_id: &str, id: &str) -> bool;
    /// Messages waiting to be delivered to an endpoint.
    fn pending_webhook_messages(&self, endpoint_id: &str) -> u64;
    /// Messages waiting to be delivered, to every endpoint.
    fn webhook_backlog(&self) -> u64;
    /// Queues an event that reports no change of the registry's (a
    /// session going live, a thumbnail made).
    fn queue_webhook_event(&self, event: &WebhookEvent) -> ();
    /// Claims up to `limit` messages due at `now_ms`, for `claim_ms`, at
    /// most `per_endpoint` of one endpoint and none of `busy`'s, with
    /// their endpoints.
    fn due_webhook_messages(&self, now_ms: i64, claim_ms: i64, limit: usize, per_endpoint: usize, busy: &[String]) -> Vec<(WebhookMessage, WebhookEndpointRecord)>;
    /// Records an attempt; says whether it disabled the endpoint.
    fn finish_webhook_attempt(&self, message: &WebhookMessage, result: &AttemptResult) -> Disabled;
    /// An endpoint's attempts, newest first.
    fn webhook_attempts(&self, endpoint_id: &str, page_token: &str, page_size: usize) -> Page<WebhookAttempt>;
    /// Deletes the attempts made before `before_ms`.
    fn prune_webhook_attempts(&self, before_ms: i64) -> u64;
}
