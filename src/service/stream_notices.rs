//! Tells webhooks that streams went live, ended or failed: reads the
//! events of every stream whose session runs on this node
//! ([`StreamHub::notices`]) and queues `stream.live`, `stream.ended` and
//! `stream.error` (a session that failed, or a feature that failed while
//! the stream goes on) for the organizations whose endpoints take them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::convert;
use crate::ids::StreamRef;
use crate::proto::v1 as pb;
use crate::registry::Registry;
use crate::streams::StreamHub;
use crate::webhooks::sink::EventSink;
use crate::webhooks::{event_types, events};

/// The webhook event type of a stream event, if it has one: a change of
/// state (a repeated state with another message is not one), or a
/// feature's failure. `last` is the stream's state before the event.
fn event_type_of(event: &pb::StreamEvent, last: pb::StreamState) -> Option<&'static str> {
    use pb::stream_event::Kind;
    if event.kind() == Kind::StateChanged && event.state() == last {
        return None;
    }
    match (event.kind(), event.state()) {
        (Kind::StateChanged, pb::StreamState::Live) => Some(event_types::STREAM_LIVE),
        (Kind::StateChanged, pb::StreamState::Ended) => Some(event_types::STREAM_ENDED),
        (Kind::StateChanged, pb::StreamState::Error) | (Kind::FeatureError, _) => {
            Some(event_types::STREAM_ERROR)
        }
        _ => None,
    }
}

/// Streams remembered before the ones deleted are forgotten (then twice
/// as many as the node has).
const PRUNE_AT: usize = 1024;

/// Runs until `shutdown`.
pub async fn run(
    hub: Arc<StreamHub>,
    registry: Arc<Registry>,
    sink: Arc<EventSink>,
    node_id: String,
    shutdown: CancellationToken,
) {
    let mut notices = hub.notices();
    let mut last_states: HashMap<StreamRef, pb::StreamState> = HashMap::new();
    loop {
        let (stream_ref, event) = tokio::select! {
            _ = shutdown.cancelled() => return,
            notice = notices.recv() => match notice {
                Ok(notice) => notice,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "stream events missed by webhooks (too many at once)");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        let last = last_states
            .get(&stream_ref)
            .copied()
            .unwrap_or(pb::StreamState::Idle);
        if event.kind() == pb::stream_event::Kind::StateChanged {
            let new_stream = last_states
                .insert(stream_ref.clone(), event.state())
                .is_none();
            if new_stream && last_states.len() >= PRUNE_AT.max(2 * hub.stream_count()) {
                // Deleted streams send nothing more: forget them.
                last_states.retain(|stream_ref, _| hub.get(stream_ref).is_some());
            }
        }
        let Some(event_type) = event_type_of(&event, last) else {
            continue;
        };
        let org = &stream_ref.organization_id;
        if !sink.wants(org, event_type).await {
            continue;
        }
        let record = match registry.stream(org, &stream_ref.stream_id).await {
            Ok(Some(record)) => record,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(stream = %stream_ref, error = %e, "stream event not sent to webhooks: the registry did not answer");
                continue;
            }
        };
        let stats = hub
            .get(&stream_ref)
            .and_then(|live| live.session_stats())
            .map(|stats| stats.to_proto());
        let mut stream = convert::stream(
            &record,
            event.state(),
            stats,
            None,
            &convert::IngestAddrs::default(),
        );
        stream.node_id = node_id.clone();
        sink.push(events::stream(event_type, &stream, &event.message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: pb::stream_event::Kind, state: pb::StreamState) -> pb::StreamEvent {
        pb::StreamEvent {
            kind: kind as i32,
            state: state as i32,
            ..Default::default()
        }
    }

    #[test]
    fn only_changes_of_state_and_failures_are_events() {
        use pb::stream_event::Kind;
        use pb::StreamState::*;
        let live = event(Kind::StateChanged, Live);
        assert_eq!(event_type_of(&live, Idle), Some(event_types::STREAM_LIVE));
        assert_eq!(
            event_type_of(&live, Live),
            None,
            "LIVE again, another message"
        );
        assert_eq!(
            event_type_of(&event(Kind::StateChanged, Ended), Live),
            Some(event_types::STREAM_ENDED)
        );
        assert_eq!(
            event_type_of(&event(Kind::FeatureError, Live), Live),
            Some(event_types::STREAM_ERROR)
        );
        assert_eq!(
            event_type_of(&event(Kind::TimelineDiscontinuity, Live), Live),
            None
        );
    }
}
