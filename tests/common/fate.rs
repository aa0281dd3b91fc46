//! What became of one publisher of an overloaded node, told the same way
//! by `tests/overload.rs` (CI, small) and the capacity benchmark's
//! overload step (full scale): kept, refused, shed, or lost.

use liveproc::proto::v1 as pb;

use super::Server;
use super::Watcher;

/// What became of one publisher.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    /// Live to the end.
    Kept,
    /// Never admitted (the publisher gave up).
    Refused,
    /// Admitted, then ended by the node with its reason.
    Shed,
    /// Anything else: a session that ended by itself (what its stream and
    /// publisher said).
    Lost(String),
}

impl Fate {
    /// The fate of the publisher of `stream_id`, from the stream's state
    /// and reason now and whether the publisher still runs (`gone`: it
    /// ended, with what it said when known).
    pub async fn of(server: &Server, key: &str, stream_id: &str, gone: Option<String>) -> Fate {
        // A watch starts with the stream's state now, and why.
        let now = Watcher::start(server, key, stream_id).await.next().await;
        let state = now.state();
        match (state, &gone) {
            (pb::StreamState::Live, None) => Fate::Kept,
            (pb::StreamState::Idle, Some(_)) => Fate::Refused,
            (pb::StreamState::Error, _) if now.message.contains("overloaded") => Fate::Shed,
            _ => Fate::Lost(format!(
                "{state:?} {:?}, publisher {}",
                now.message,
                gone.as_deref().unwrap_or("running")
            )),
        }
    }
}

/// How many of each: kept, refused, shed, and the lost ones.
pub fn tally<'a>(fates: impl IntoIterator<Item = &'a Fate>) -> (usize, usize, usize, Vec<String>) {
    let (mut kept, mut refused, mut shed, mut lost) = (0, 0, 0, vec![]);
    for fate in fates {
        match fate {
            Fate::Kept => kept += 1,
            Fate::Refused => refused += 1,
            Fate::Shed => shed += 1,
            Fate::Lost(what) => lost.push(what.clone()),
        }
    }
    (kept, refused, shed, lost)
}
