//! The sending side of one server-streaming subscription that follows a
//! stream (`WatchStream`, `SubscribeThumbnails`, `SubscribeMotionClips`,
//! `SubscribeReplay`): a small bounded channel to the client, ended when
//! the client leaves, or when the stream is deleted or the server stops
//! (the client is then told why). Every subscription waits and sends
//! through it, so they all end the same way.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use crate::streams::LiveStream;

pub struct Subscriber<T> {
    tx: mpsc::Sender<Result<T, Status>>,
    live: Arc<LiveStream>,
}

impl<T: Send + 'static> Subscriber<T> {
    /// A subscriber of `live` holding at most `buffer` items unread, and
    /// the stream of responses the client reads.
    pub fn new(live: Arc<LiveStream>, buffer: usize) -> (Self, ReceiverStream<Result<T, Status>>) {
        let (tx, rx) = mpsc::channel(buffer);
        (Self { tx, live }, ReceiverStream::new(rx))
    }

    /// Waits for `next`; `None` when the subscription is over instead (the
    /// client left, or the stream's watchers end: the client is told why).
    pub async fn wait<F: Future>(&self, next: F) -> Option<F::Output> {
        tokio::select! {
            _ = self.tx.closed() => None,
            _ = self.live.watchers_end().cancelled() => {
                let _ = self.tx.send(Err(self.live.end_reason().into())).await;
                None
            }
            output = next => Some(output),
        }
    }

    /// Sends `item` once the client has room for it; false when the
    /// subscription is over.
    pub async fn send(&self, item: T) -> bool {
        self.wait(self.tx.send(Ok(item)))
            .await
            .is_some_and(|sent| sent.is_ok())
    }

    /// Ends the subscription with an error.
    pub async fn fail(&self, status: Status) {
        let _ = self.tx.send(Err(status)).await;
    }
}
