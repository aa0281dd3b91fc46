//! A numbered feed of produced items (thumbnails, motion clips) of one
//! stream: the latest item and a broadcast of new ones. Items are cheap to
//! clone (their payload is `bytes::Bytes`), so every subscriber shares the
//! one encoded output. Sending never waits: a subscriber that falls more
//! than the buffer behind skips ahead and sees the gap in `sequence`.

use std::sync::Mutex;

use tokio::sync::broadcast;

/// Items kept for subscribers that are a little behind.
const FEED_BUFFER: usize = 16;

pub struct Feed<T: Clone> {
    state: Mutex<(u64, Option<T>)>,
    tx: broadcast::Sender<T>,
}

impl<T: Clone> Default for Feed<T> {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(FEED_BUFFER);
        Self {
            state: Mutex::new((0, None)),
            tx,
        }
    }
}

impl<T: Clone> Feed<T> {
    /// Restores the latest item and its sequence (after a restart).
    pub fn restore(&self, sequence: u64, latest: T) {
        *self.state.lock().expect("feed lock") = (sequence, Some(latest));
    }

    /// Publishes an item built with the next sequence number.
    pub fn publish(&self, make: impl FnOnce(u64) -> T) -> T {
        let mut state = self.state.lock().expect("feed lock");
        state.0 += 1;
        let item = make(state.0);
        state.1 = Some(item.clone());
        let _ = self.tx.send(item.clone());
        item
    }

    /// Uses up the next sequence number without an item: an item that
    /// could not be made shows as a gap to subscribers.
    pub fn skip(&self) {
        self.state.lock().expect("feed lock").0 += 1;
    }

    pub fn latest(&self) -> Option<T> {
        self.state.lock().expect("feed lock").1.clone()
    }

    /// The latest item and a receiver of every later one, atomically.
    pub fn subscribe(&self) -> (Option<T>, broadcast::Receiver<T>) {
        let state = self.state.lock().expect("feed lock");
        (state.1.clone(), self.tx.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_items_and_keeps_latest() {
        let feed: Feed<(u64, &str)> = Feed::default();
        let (latest, mut rx) = feed.subscribe();
        assert!(latest.is_none());
        feed.publish(|n| (n, "a"));
        feed.publish(|n| (n, "b"));
        assert_eq!(rx.try_recv().unwrap(), (1, "a"));
        assert_eq!(rx.try_recv().unwrap(), (2, "b"));
        assert_eq!(feed.latest(), Some((2, "b")));
        feed.restore(41, (41, "x"));
        assert_eq!(feed.publish(|n| (n, "y")).0, 42);
    }
}
