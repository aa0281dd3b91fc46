//! Events that report no change of the registry's (a session going live
//! or ending, a thumbnail or motion clip made), queued off the media
//! path.
//!
//! The session or feature that makes one must not wait for the registry,
//! so [`EventSink::emit`] hands it to one task that writes it to the
//! outbox (retrying while the registry is down; at most [`MAX_WAITING`]
//! wait, the oldest dropped past that with a warning). An event no
//! endpoint of its organization takes is not even made: which types each
//! organization's endpoints take is kept here, read again on every change
//! made through this node and every [`REFRESH`] (changes made on other
//! nodes), so a thumbnail costs nothing when nobody asked for it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::registry::webhooks::WebhookEvent;
use crate::registry::Registry;

/// Events waiting for the registry, at most.
pub const MAX_WAITING: usize = 10_000;
/// How old the known subscriptions of an organization may get.
pub const REFRESH: Duration = Duration::from_secs(5);
/// Pause after a failed outbox write.
const RETRY: Duration = Duration::from_secs(1);

/// Queues events for delivery; cheap to share.
pub struct EventSink {
    registry: Arc<Registry>,
    waiting: Mutex<VecDeque<WebhookEvent>>,
    arrived: Notify,
    /// Organization → the event types its enabled endpoints take, and
    /// when that was read.
    subscriptions: Mutex<HashMap<String, (HashSet<String>, Instant)>>,
    /// Told when events reach the outbox (the delivery task waits on it).
    pub queued: Arc<Notify>,
    /// Organizations whose endpoints were changed through this node.
    endpoint_changes: tokio::sync::broadcast::Sender<String>,
}

impl EventSink {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(registry: Arc<Registry>) -> Arc<Self> {
        let sink = Arc::new(Self {
            registry,
            waiting: Mutex::new(VecDeque::new()),
            arrived: Notify::new(),
            subscriptions: Mutex::new(HashMap::new()),
            queued: Arc::new(Notify::new()),
            endpoint_changes: tokio::sync::broadcast::channel(64).0,
        });
        tokio::spawn(Arc::clone(&sink).write_all());
        sink
    }

    /// Queues the event `make` makes, if an endpoint of `organization_id`
    /// takes `event_type` (never blocks on the registry).
    pub fn emit(
        self: &Arc<Self>,
        organization_id: &str,
        event_type: &str,
        make: impl FnOnce() -> WebhookEvent,
    ) {
        match self.known_wants(organization_id, event_type) {
            Some(false) => {}
            Some(true) => self.push(make()),
            None => {
                // Not known yet: read the subscriptions first, off this task.
                let (sink, organization_id, event_type) = (
                    Arc::clone(self),
                    organization_id.to_string(),
                    event_type.to_string(),
                );
                let event = make();
                tokio::spawn(async move {
                    if sink.wants(&organization_id, &event_type).await {
                        sink.push(event);
                    }
                });
            }
        }
    }

    /// Waits (up to `grace`) until every event emitted so far is in the
    /// outbox; says whether all were.
    pub async fn flush(&self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        while !self.waiting.lock().expect("waiting lock").is_empty() {
            if Instant::now() >= deadline {
                tracing::warn!("webhook events not yet in the outbox at shutdown are lost");
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Forgets what `organization_id`'s endpoints take (they changed),
    /// and tells [`EventSink::endpoint_changes`] readers.
    pub fn subscriptions_changed(&self, organization_id: &str) {
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .remove(organization_id);
        let _ = self.endpoint_changes.send(organization_id.to_string());
    }

    /// The organizations whose endpoints are changed through this node,
    /// from now on.
    pub fn endpoint_changes(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.endpoint_changes.subscribe()
    }

    /// Whether an endpoint of the organization takes `event_type`, if it
    /// is known and fresh.
    fn known_wants(&self, organization_id: &str, event_type: &str) -> Option<bool> {
        let subscriptions = self.subscriptions.lock().expect("subscriptions lock");
        let (types, read) = subscriptions.get(organization_id)?;
        (read.elapsed() < REFRESH).then(|| types.contains(event_type))
    }

    /// Whether an endpoint of the organization takes `event_type` (read
    /// from the registry when not known).
    pub async fn wants(&self, organization_id: &str, event_type: &str) -> bool {
        if let Some(known) = self.known_wants(organization_id, event_type) {
            return known;
        }
        let types: HashSet<String> = match self.registry.webhook_endpoints(organization_id).await {
            Ok(endpoints) => endpoints
                .into_iter()
                .filter(|e| e.enabled)
                .flat_map(|e| e.event_types)
                .collect(),
            // Unknown: queue it, the outbox decides.
            Err(_) => return true,
        };
        let wanted = types.contains(event_type);
        self.subscriptions
            .lock()
            .expect("subscriptions lock")
            .insert(organization_id.to_string(), (types, Instant::now()));
        wanted
    }

    /// Queues `event` (never blocks).
    pub fn push(&self, event: WebhookEvent) {
        let mut waiting = self.waiting.lock().expect("waiting lock");
        if waiting.len() == MAX_WAITING {
            if let Some(dropped) = waiting.pop_front() {
                tracing::warn!(event = %dropped.id, r#type = %dropped.event_type, "webhook event dropped: the registry has not taken events for a while");
            }
        }
        waiting.push_back(event);
        drop(waiting);
        self.arrived.notify_one();
    }

    async fn write_all(self: Arc<Self>) {
        let mut failures = 0u32;
        loop {
            let next = self.waiting.lock().expect("waiting lock").front().cloned();
            let Some(event) = next else {
                self.arrived.notified().await;
                continue;
            };
            match self.registry.queue_webhook_event(&event).await {
                Ok(()) => {
                    failures = 0;
                    let mut waiting = self.waiting.lock().expect("waiting lock");
                    if waiting.front().is_some_and(|e| e.id == event.id) {
                        waiting.pop_front();
                    }
                    drop(waiting);
                    self.queued.notify_one();
                }
                Err(e) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::error!(error = %e, "cannot queue webhook events; retrying until the registry takes them");
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}
