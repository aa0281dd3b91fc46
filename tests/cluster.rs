//! Nodes on one registry (a real PostgreSQL and SeaweedFS, the nodes as
//! real processes): a stream's live session is held by exactly one node
//! through its lease, whichever node a publisher calls; when that node is
//! killed, the lease lapses and a publisher calling another node is
//! accepted there.

mod common;

use std::time::{Duration, Instant};

use common::*;
use liveproc::proto::v1 as pb;
use pb::{NodeState, StreamState};
use tonic::Code;

/// `ListNodes`, with the admin key.
async fn list_nodes(server: &Server) -> Vec<pb::Node> {
    server
        .cluster()
        .await
        .list_nodes(authed(pb::ListNodesRequest {}, ADMIN_KEY))
        .await
        .unwrap()
        .into_inner()
        .nodes
}

/// A node named `id` on `database` and `store`.
fn node(id: &str, database: &str, store: &str) -> Server {
    Server::builder()
        .database_url(database)
        .object_store(store)
        .flags(&["--node-id", id])
        .start()
}

/// Whether `child` exits within `limit` (its exit has no event to wait
/// on without giving it up).
async fn exits_within(child: &mut std::process::Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_held_by_one_node_and_moves_when_that_node_dies() {
    let database = postgres::shared().new_database().await;
    let store = s3::shared().store_url(&format!("cluster-{}", rand_suffix()));
    let a = node("node-a", &database, &store);
    let b = node("node-b", &database, &store);
    // Created through A after B started: B learns of it from the registry.
    let org = a.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&a, key, "cam", Some(recording_options(4)))
        .await
        .unwrap();

    let mut on_a = Watcher::start(&a, key, "cam").await;
    let mut publisher = srt_publish(&a.srt_url(&stream), test_ts_45s());
    on_a.until_state(StreamState::Live, 20).await;

    // A publisher calling B is refused, and told where the stream is live.
    let push = Push::open(&b, &stream, None).await;
    let _ = push.send(&std::fs::read(test_ts()).unwrap()).await;
    let refused = push.finish().await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(refused.message().contains("node-a"), "{refused:?}");
    let second = srt_publish(&b.srt_url(&stream), test_ts());
    let exit = within(30, "B to refuse an SRT publisher", wait_child(second)).await;
    assert!(!exit.success(), "B took a second publisher");
    let still = get_stream(&a, key, "cam").await.unwrap();
    assert_eq!(still.state(), StreamState::Live);
    // Every node says where the session is.
    for server in [&a, &b] {
        let seen = get_stream(server, key, "cam").await.unwrap();
        assert_eq!(
            (seen.state(), seen.node_id.as_str()),
            (StreamState::Live, "node-a")
        );
    }
    // Both nodes are up, A with one live stream.
    let nodes = list_nodes(&b).await;
    let ids: Vec<_> = nodes.iter().map(|n| (n.id.as_str(), n.state())).collect();
    assert_eq!(
        ids,
        [("node-a", NodeState::NodeUp), ("node-b", NodeState::NodeUp)]
    );
    assert!(
        nodes[0].advertise_url.starts_with("http://127.0.0.1:"),
        "{nodes:?}"
    );
    within(10, "A's heartbeat to count its stream", async {
        while list_nodes(&b).await[0].live_streams != 1 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;

    // A dies. The publisher reconnects to B, as behind a load balancer,
    // until B takes it (A's lease lapses within 8 s).
    a.kill9();
    let _ = publisher.kill();
    let _ = publisher.wait();
    let killed = Instant::now();
    let mut on_b = Watcher::start(&b, key, "cam").await;
    let accepted;
    (publisher, accepted) = within(30, "B to take the stream over", async {
        loop {
            let called = killed.elapsed();
            let mut ffmpeg = srt_publish(&b.srt_url(&stream), test_ts_25s());
            // A refused caller exits at once; an accepted one streams on.
            if !exits_within(&mut ffmpeg, Duration::from_secs(2)).await {
                return (ffmpeg, called);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    })
    .await;
    on_b.until_state(StreamState::Live, 20).await;
    let live = killed.elapsed();
    eprintln!(
        "failover: node B accepted the publisher's call made {accepted:?} after node A was killed, LIVE after {live:?}"
    );
    // The lease lapses 8 s after A's last renewal; the publisher calls
    // every ~0.6 s.
    assert!(accepted <= Duration::from_secs(10), "{accepted:?}");
    assert!(live <= Duration::from_secs(15), "{live:?}");
    let seen = get_stream(&b, key, "cam").await.unwrap();
    assert_eq!(seen.node_id, "node-b");
    within(10, "A to be seen as lost", async {
        while list_nodes(&b).await[0].state() != NodeState::NodeLost {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    let _ = publisher.kill();
    let _ = publisher.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_at_its_limit_refuses_new_sessions_with_the_reason() {
    let server = Server::builder()
        .flags(&["--node-id", "small", "--max-streams", "1"])
        .start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let first = create_stream(&server, key, "one", None).await.unwrap();
    let other = create_stream(&server, key, "two", None).await.unwrap();
    let mut watch = Watcher::start(&server, key, "one").await;
    let mut publisher = srt_publish(&server.srt_url(&first), test_ts_25s());
    watch.until_state(StreamState::Live, 20).await;

    let push = Push::open(&server, &other, None).await;
    let _ = push.send(&std::fs::read(test_ts()).unwrap()).await;
    let refused = push.finish().await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(
        refused.message().contains("limit of 1 live stream"),
        "{refused:?}"
    );
    // A single node lists itself; an organization's key may not list.
    let nodes = list_nodes(&server).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!((nodes[0].id.as_str(), nodes[0].max_streams), ("small", 1));
    let denied = server
        .cluster()
        .await
        .list_nodes(authed(pb::ListNodesRequest {}, key))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let _ = publisher.kill();
    let _ = publisher.wait();
    watch.until_state(StreamState::Ended, 20).await;
    // With the first session gone there is room again.
    let answer = push_file(&server, &other, test_ts()).await;
    assert!(answer.bytes_received > 0);
}

/// `GetStream`'s answer on `server` once `node` holds the session and
/// it is LIVE there.
async fn until_live_on(server: &Server, key: &str, node: &str, secs: u64) -> Duration {
    let since = Instant::now();
    within(secs, &format!("the stream to be LIVE on {node}"), async {
        loop {
            let seen = get_stream(server, key, "pattern").await.unwrap();
            if seen.node_id == node && seen.state() == StreamState::Live {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_stream_moves_to_another_node_on_drain_and_on_a_kill() {
    let database = postgres::shared().new_database().await;
    let store = s3::shared().store_url(&format!("pulls-{}", rand_suffix()));
    let a = node("node-a", &database, &store);
    let org = a.create_org("acme", true).await;
    let key = org.api_key.as_str();
    a.live()
        .await
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: "pattern".into(),
                name: "test pattern".into(),
                processing: None,
                source_uri: "test://pattern".into(),
            },
            key,
        ))
        .await
        .unwrap();
    until_live_on(&a, key, "node-a", 30).await;
    let b = node("node-b", &database, &store);
    let seen = get_stream(&b, key, "pattern").await.unwrap();
    assert_eq!(seen.node_id, "node-a");

    // A drains (SIGTERM, as in a rolling upgrade): its pull goes to B.
    a.stop();
    let drained = until_live_on(&b, key, "node-b", 15).await;
    eprintln!("pull moved on drain in {drained:?}");
    assert!(drained <= Duration::from_secs(5), "{drained:?}");

    // B is killed: a node started meanwhile takes the pull once B's lease
    // lapses.
    let c = node("node-c", &database, &store);
    b.kill9();
    let failover = until_live_on(&c, key, "node-c", 30).await;
    eprintln!("pull moved after a kill in {failover:?}");
    assert!(failover <= Duration::from_secs(15), "{failover:?}");
}
