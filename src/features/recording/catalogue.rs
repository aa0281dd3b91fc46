//! The recordings' catalogue writes, off the media path.
//!
//! The recorder runs in a session's task and must never wait for the
//! registry: a PostgreSQL round trip, or a database that is restarting,
//! would stall the stream's ingest. It hands each record (a file opened,
//! a file closed) to [`CatalogueWriter`], whose one task writes them in
//! order. A write that fails is retried, with a growing pause, until the
//! registry takes it; meanwhile newer states of the same recording replace
//! the queued one, so the queue holds at most one entry per recording
//! being written or closed. The recording goes on while the registry is
//! down, and is listed as soon as it is back. A write the registry
//! refuses because another node took the session over (fencing) is not
//! retried: the recording is that node's now.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::error::Error;
use crate::registry::{RecordingRecord, Registry};

/// First pause after a failed write; it doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Sends records to the catalogue's writer task.
pub struct CatalogueWriter {
    records: mpsc::UnboundedSender<RecordingRecord>,
    /// Records handed over and not yet written.
    outstanding: watch::Sender<usize>,
}

impl CatalogueWriter {
    /// Starts the writer task on the current tokio runtime; with
    /// `report_ready`, a finished recording is written with its
    /// `recording.ready` event.
    pub fn start(registry: Arc<Registry>, report_ready: bool) -> Self {
        let (records, queue) = mpsc::unbounded_channel();
        let (outstanding, _) = watch::channel(0);
        tokio::spawn(write_all(
            registry,
            queue,
            outstanding.clone(),
            report_ready,
        ));
        Self {
            records,
            outstanding,
        }
    }

    /// Queues `record` to be written (never blocks).
    pub fn submit(&self, record: RecordingRecord) {
        self.outstanding.send_modify(|n| *n += 1);
        if self.records.send(record).is_err() {
            self.outstanding.send_modify(|n| *n -= 1);
            tracing::error!("the recordings' catalogue writer has stopped");
        }
    }

    /// Waits until every record handed over so far is written, or `grace`
    /// has passed; says whether all were.
    pub async fn flush(&self, grace: Duration) -> bool {
        let mut outstanding = self.outstanding.subscribe();
        tokio::time::timeout(grace, outstanding.wait_for(|n| *n == 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Writes records in the order they came until every sender is gone.
async fn write_all(
    registry: Arc<Registry>,
    mut incoming: mpsc::UnboundedReceiver<RecordingRecord>,
    outstanding: watch::Sender<usize>,
    report_ready: bool,
) {
    let mut queue = Queue::default();
    let mut failures = 0u32;
    loop {
        if queue.is_empty() {
            match incoming.recv().await {
                Some(record) => queue.push(record, &outstanding),
                None => return,
            }
        }
        while let Ok(record) = incoming.try_recv() {
            queue.push(record, &outstanding);
        }
        let record = queue.front();
        let event = report_ready.then(|| super::ready_event(record)).flatten();
        match registry.put_recording(record, event.as_ref()).await {
            Ok(()) => {
                if failures > 0 {
                    tracing::info!(failures, "recordings catalogued again");
                }
                failures = 0;
                queue.pop(&outstanding);
            }
            Err(Error::Fenced { what }) => {
                tracing::error!(recording = %record.id, %what, "another node took over the session; its catalogue write is dropped and the local file left as it is");
                queue.pop(&outstanding);
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::error!(recording = %record.id, error = %e, "cannot catalogue a recording; retrying until the registry takes it");
                }
                let pause = FIRST_RETRY
                    .saturating_mul(1 << failures.min(5))
                    .min(MAX_RETRY);
                tokio::time::sleep(pause).await;
            }
        }
    }
}

/// Records waiting to be written, one per recording.
#[derive(Default)]
struct Queue(VecDeque<RecordingRecord>);

impl Queue {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn front(&self) -> &RecordingRecord {
        self.0.front().expect("the queue is not empty")
    }

    /// Adds `record`, or replaces the queued state of the same recording
    /// (which then counts as handled).
    fn push(&mut self, record: RecordingRecord, outstanding: &watch::Sender<usize>) {
        match self.0.iter_mut().find(|queued| queued.id == record.id) {
            Some(queued) => {
                *queued = record;
                outstanding.send_modify(|n| *n -= 1);
            }
            None => self.0.push_back(record),
        }
    }

    fn pop(&mut self, outstanding: &watch::Sender<usize>) {
        self.0.pop_front();
        outstanding.send_modify(|n| *n -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::RecordingState;

    fn record(id: &str, state: RecordingState) -> RecordingRecord {
        RecordingRecord {
            id: id.into(),
            organization_id: "org".into(),
            stream_id: "cam".into(),
            file_name: format!("{id}.mp4"),
            state,
            start_time_ms: 0,
            end_time_ms: 0,
            start_pts_ns: 0,
            duration_ns: 0,
            size_bytes: 0,
            session_id: "ses".into(),
            uploaded: false,
            writer: Default::default(),
        }
    }

    #[tokio::test]
    async fn records_are_written_in_order_and_flush_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let registry =
            Arc::new(Registry::open_embedded(&dir.path().join("registry.redb")).unwrap());
        let writer = CatalogueWriter::start(Arc::clone(&registry), false);
        writer.submit(record("rec_1", RecordingState::Recording));
        writer.submit(record("rec_2", RecordingState::Recording));
        writer.submit(record("rec_1", RecordingState::Complete));
        assert!(writer.flush(Duration::from_secs(5)).await);
        let listed = registry
            .list_recordings("org", "cam", "", 10)
            .await
            .unwrap()
            .items;
        let states: Vec<_> = listed.iter().map(|r| (r.id.as_str(), r.state)).collect();
        assert_eq!(
            states,
            vec![
                ("rec_1", RecordingState::Complete),
                ("rec_2", RecordingState::Recording)
            ]
        );
    }

    #[test]
    fn a_newer_state_replaces_the_queued_one() {
        let (outstanding, _) = watch::channel(0);
        let mut queue = Queue::default();
        for (id, state) in [
            ("rec_1", RecordingState::Recording),
            ("rec_2", RecordingState::Recording),
            ("rec_1", RecordingState::Complete),
        ] {
            outstanding.send_modify(|n| *n += 1);
            queue.push(record(id, state), &outstanding);
        }
        assert_eq!(*outstanding.borrow(), 2);
        assert_eq!(queue.front().id, "rec_1");
        assert_eq!(queue.front().state, RecordingState::Complete);
        queue.pop(&outstanding);
        queue.pop(&outstanding);
        assert!(queue.is_empty());
        assert_eq!(*outstanding.borrow(), 0);
    }
}
