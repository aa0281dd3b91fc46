//! The registry's contract, run against both backends: the embedded redb
//! file and a real PostgreSQL server (a private one, started by the test).
//! Each case runs on a fresh registry of each kind and checks the same
//! answers: records as stored, keys, scoping by organization, pages, the
//! session index, settings. Then PostgreSQL-only cases: two nodes on one
//! database, a database restart, migrations applied once.

mod common;

use std::future::Future;
use std::time::Duration;

use common::postgres::{self, PgServer, PG_PASSWORD};
use liveproc::error::Error;
use liveproc::ids::StreamRef;
use liveproc::registry::cluster::{Fence, LeaseGrant, NodeRecord};
use liveproc::registry::webhooks::{
    AttemptOutcome, AttemptResult, WebhookAttempt, WebhookEndpointRecord, WebhookEvent,
    WebhookMessage,
};
use liveproc::registry::{
    setting, AuditEvent, ClipRecord, Quotas, RecordingPart, RecordingRecord, RecordingState,
    Registry, SrtEncryption, StreamRecord,
};

/// Runs `case` on a new embedded registry and on a new PostgreSQL one.
async fn on_both<F, Fut>(case: F)
where
    F: Fn(Registry) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let embedded = Registry::open_embedded(&dir.path().join("registry.redb")).unwrap();
    case(embedded).await;
    let url = postgres::shared().new_database().await;
    let pg = Registry::connect_postgres(&url).await.unwrap();
    assert!(pg.is_shared());
    case(pg).await;
}

fn stream(org: &str, id: &str) -> StreamRecord {
    StreamRecord {
        id: id.into(),
        organization_id: org.into(),
        name: format!("{id} name"),
        processing: serde_json::from_str(
            r#"{"thumbnail":{"interval_seconds":15},"motion_clip":null,"recording":null,"replay":null}"#,
        )
        .expect("processing options"),
        stream_key: format!("sk_{org}_{id}"),
        source_uri: (id == "pulled").then(|| "srt://203.0.113.7:9000?mode=caller".into()),
        create_time_ms: 1_700_000_000_123,
        // The plain stream of each organization also asks its SRT
        // publishers to encrypt; every read must give that back.
        srt_encryption: (id == "cam").then(|| SrtEncryption {
            passphrase: format!("pp-{org}-{id}-0123456789"),
            key_length: 32,
        }),
    }
}

fn recording(org: &str, stream: &str, id: &str, session: &str) -> RecordingRecord {
    RecordingRecord {
        id: id.into(),
        organization_id: org.into(),
        stream_id: stream.into(),
        file_name: format!("{id}.mp4"),
        state: RecordingState::Recording,
        start_time_ms: 1_700_000_000_000,
        end_time_ms: 1_700_000_010_000,
        start_pts_ns: 3_600_000_000_000,
        duration_ns: 10_000_000_000,
        size_bytes: 5 << 30,
        session_id: session.into(),
        uploaded: false,
        writer: Fence::default(),
    }
}

fn clip(org: &str, stream: &str, id: &str) -> ClipRecord {
    ClipRecord {
        id: id.into(),
        organization_id: org.into(),
        stream_id: stream.into(),
        file_name: format!("{id}.mp4"),
        title: "the goal".into(),
        start_time_ms: 1_700_000_000_000,
        start_pts_ns: 42,
        duration_ns: 30_000_000_000,
        size_bytes: 123_456,
        create_time_ms: 1_700_000_100_000,
        uploaded: false,
    }
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap()
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> &str) -> Vec<String> {
    items.iter().map(|i| id(i).to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_and_their_keys() {
    on_both(|registry| async move {
        let (org, key) = registry.create_organization("acme", false).await.unwrap();
        assert!(key.starts_with("lp_"));
        let found = registry.organization(&org.id).await.unwrap().unwrap();
        assert_eq!(json(&found), json(&org));
        assert_eq!(
            registry.organization_for_api_key(&key).await.unwrap(),
            Some(org.id.clone())
        );
        assert_eq!(
            registry.organization_for_api_key("lp_wrong").await.unwrap(),
            None
        );

        let enabled = registry.set_live_processing(&org.id, true).await.unwrap();
        assert!(enabled.live_processing);
        let (rotated, new_key) = registry.rotate_api_key(&org.id).await.unwrap();
        assert_ne!(rotated.api_key_hash, org.api_key_hash);
        assert!(rotated.live_processing);
        assert_eq!(registry.organization_for_api_key(&key).await.unwrap(), None);
        assert_eq!(
            registry.organization_for_api_key(&new_key).await.unwrap(),
            Some(org.id.clone())
        );
        for missing in [
            registry
                .set_live_processing("org_missing", true)
                .await
                .err(),
            registry.rotate_api_key("org_missing").await.err(),
        ] {
            assert!(
                matches!(missing, Some(Error::NotFound { .. })),
                "{missing:?}"
            );
        }
        assert!(registry
            .organization("org_missing")
            .await
            .unwrap()
            .is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_scoped_by_organization() {
    on_both(|registry| async move {
        let (a, _) = registry.create_organization("a", true).await.unwrap();
        let (b, _) = registry.create_organization("b", true).await.unwrap();
        let cam = stream(&a.id, "cam");
        registry.create_stream(&cam, None).await.unwrap();
        let again = registry.create_stream(&cam, None).await;
        assert!(
            matches!(again, Err(Error::AlreadyExists { .. })),
            "{again:?}"
        );
        // The same client-chosen id in another organization is another
        // stream.
        registry
            .create_stream(&stream(&b.id, "cam"), None)
            .await
            .unwrap();
        registry
            .create_stream(&stream(&a.id, "pulled"), None)
            .await
            .unwrap();

        let found = registry.stream(&a.id, "cam").await.unwrap().unwrap();
        assert_eq!(json(&found), json(&cam));
        assert!(registry.stream(&b.id, "pulled").await.unwrap().is_none());
        let by_key = registry
            .stream_for_publish_key(&cam.stream_key)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (by_key.organization_id, by_key.id),
            (a.id.clone(), "cam".into())
        );

        let mut changed = cam.processing.clone();
        changed.thumbnail = None;
        let updated = registry
            .set_processing(&a.id, "cam", &changed, None)
            .await
            .unwrap();
        assert_eq!(json(&updated.processing), json(&changed));
        assert_eq!(updated.srt_encryption, cam.srt_encryption);
        let missing = registry
            .set_processing(&b.id, "pulled", &changed, None)
            .await;
        assert!(
            matches!(missing, Err(Error::NotFound { .. })),
            "{missing:?}"
        );

        assert_eq!(registry.all_streams().await.unwrap().len(), 3);
        let deleted = registry.delete_stream(&a.id, "cam").await.unwrap();
        assert_eq!(deleted.id, "cam");
        assert!(registry
            .stream_for_publish_key(&cam.stream_key)
            .await
            .unwrap()
            .is_none());
        let again = registry.delete_stream(&a.id, "cam").await;
        assert!(matches!(again, Err(Error::NotFound { .. })), "{again:?}");
        assert!(registry.stream(&b.id, "cam").await.unwrap().is_some());
    })
    .await;
}

/// Creations racing for the last places of a streams quota: exactly the
/// quota's number are stored, the others refused with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streams_quota_holds_under_concurrent_creations() {
    on_both(|registry| async move {
        let (org, _) = registry.create_organization("a", true).await.unwrap();
        let org = registry
            .set_quotas(
                &org.id,
                &Quotas {
                    streams: 3,
                    ..Quotas::default()
                },
            )
            .await
            .unwrap();
        let registry = std::sync::Arc::new(registry);
        let creations = (0..12).map(|i| {
            let (registry, org) = (std::sync::Arc::clone(&registry), org.clone());
            tokio::spawn(async move {
                registry
                    .create_stream(&stream(&org.id, &format!("s{i}")), Some(&org))
                    .await
            })
        });
        let results = futures::future::join_all(creations).await;
        let stored = results
            .iter()
            .filter(|r| r.as_ref().unwrap().is_ok())
            .count();
        assert_eq!(stored, 3);
        for result in results {
            if let Err(e) = result.unwrap() {
                assert!(
                    matches!(
                        e,
                        Error::QuotaExceeded {
                            quota: "streams",
                            limit: 3,
                            used: 3,
                            ..
                        }
                    ),
                    "{e:?}"
                );
            }
        }
        assert_eq!(registry.stream_count(&org.id).await.unwrap(), 3);
        let record = registry.organization(&org.id).await.unwrap().unwrap();
        assert_eq!(record.quotas.streams, 3);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_page_in_byte_order_on_both() {
    on_both(|registry| async move {
        let (org, _) = registry.create_organization("pages", true).await.unwrap();
        // Mixed case and digits: byte order is not a locale's order.
        let names = ["B", "a", "A-1", "a_2", "Z", "b", "0"];
        for name in names {
            registry
                .create_stream(&stream(&org.id, name), None)
                .await
                .unwrap();
        }
        let mut seen = vec![];
        let mut token = String::new();
        let mut pages = 0;
        loop {
            let page = registry.list_streams(&org.id, &token, 3).await.unwrap();
            assert!(page.items.len() <= 3);
            seen.extend(ids(&page.items, |s| &s.id));
            pages += 1;
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let mut want: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(pages, 3);
        // An exact page has no next page.
        let all = registry
            .list_streams(&org.id, "", names.len())
            .await
            .unwrap();
        assert_eq!(all.items.len(), names.len());
        assert_eq!(all.next_page_token, "");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalogue_keeps_recordings_and_clips_per_organization() {
    on_both(|registry| async move {
        let mut first = recording("org", "cam", "rec_1", "ses_a");
        registry.put_recording(&first, None).await.unwrap();
        for (id, session) in [("rec_2", "ses_b"), ("rec_3", "ses_a")] {
            registry
                .put_recording(&recording("org", "cam", id, session), None)
                .await
                .unwrap();
        }
        registry
            .put_recording(&recording("org", "other", "rec_4", "ses_a"), None)
            .await
            .unwrap();
        registry
            .put_recording(&recording("org2", "cam", "rec_5", "ses_a"), None)
            .await
            .unwrap();

        let unfinished = registry.unfinished_recordings().await.unwrap();
        assert_eq!(unfinished.len(), 5);
        first.state = RecordingState::Complete;
        first.size_bytes = 7 << 30;
        registry.put_recording(&first, None).await.unwrap();
        let found = registry.recording("org", "rec_1").await.unwrap().unwrap();
        assert_eq!(json(&found), json(&first));
        assert!(registry.recording("org2", "rec_1").await.unwrap().is_none());
        assert_eq!(registry.unfinished_recordings().await.unwrap().len(), 4);

        let session = registry
            .session_recordings("org", "cam", "ses_a")
            .await
            .unwrap();
        assert_eq!(ids(&session, |r| &r.id), vec!["rec_1", "rec_3"]);
        let listed = registry.list_recordings("org", "cam", "", 2).await.unwrap();
        assert_eq!(ids(&listed.items, |r| &r.id), vec!["rec_1", "rec_2"]);
        let rest = registry
            .list_recordings("org", "cam", &listed.next_page_token, 2)
            .await
            .unwrap();
        assert_eq!(ids(&rest.items, |r| &r.id), vec!["rec_3"]);
        assert_eq!(rest.next_page_token, "");

        // Parts in object storage, and what is still to upload.
        let to_upload = registry.recordings_to_upload().await.unwrap();
        assert_eq!(to_upload.len(), 5);
        for seq in [1, 0, 2] {
            let part = RecordingPart {
                recording_id: "rec_1".into(),
                seq,
                offset: u64::from(seq) * 1000,
                size: 1000,
            };
            registry
                .put_recording_part(&first.writer, &part)
                .await
                .unwrap();
        }
        let parts = registry.recording_parts("rec_1").await.unwrap();
        assert_eq!(
            parts.iter().map(|p| p.seq).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
        assert!(registry.recording_parts("rec_3").await.unwrap().is_empty());
        first.uploaded = true;
        registry.put_recording(&first, None).await.unwrap();
        let to_upload = registry.recordings_to_upload().await.unwrap();
        assert_eq!(
            ids(&to_upload, |r| &r.id),
            vec!["rec_2", "rec_3", "rec_4", "rec_5"]
        );

        registry.delete_recording(&first).await.unwrap();
        assert!(registry.recording_parts("rec_1").await.unwrap().is_empty());
        let session = registry
            .session_recordings("org", "cam", "ses_a")
            .await
            .unwrap();
        assert_eq!(ids(&session, |r| &r.id), vec!["rec_3"]);

        let c = clip("org", "cam", "clip_1");
        registry.put_clip(&c, None, None).await.unwrap();
        registry
            .put_clip(&clip("org", "cam", "clip_2"), None, None)
            .await
            .unwrap();
        assert_eq!(
            json(&registry.clip("org", "clip_1").await.unwrap().unwrap()),
            json(&c)
        );
        assert!(registry.clip("org2", "clip_1").await.unwrap().is_none());
        let clips = registry.list_clips("org", "cam", "", 10).await.unwrap();
        assert_eq!(ids(&clips.items, |c| &c.id), vec!["clip_1", "clip_2"]);
        registry.delete_clip(&c).await.unwrap();
        assert!(registry.clip("org", "clip_1").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_set_once_unless_replaced() {
    on_both(|registry| async move {
        assert_eq!(registry.admin_key_hash().await.unwrap(), None);
        registry.set_admin_key_hash("h1").await.unwrap();
        registry.set_admin_key_hash("h2").await.unwrap();
        assert_eq!(
            registry.admin_key_hash().await.unwrap().as_deref(),
            Some("h2")
        );
        let first = registry
            .setting_or_insert(setting::URL_SIGNING_KEY, "k1")
            .await
            .unwrap();
        let second = registry
            .setting_or_insert(setting::URL_SIGNING_KEY, "k2")
            .await
            .unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("k1", "k1"));
        registry.probe_write().await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn audit_events_past_the_retention_are_deleted_oldest_first() {
    on_both(|registry| async move {
        let day = 86_400_000;
        let now = 1_800_000_000_000;
        // Two organizations, events 10, 9, ... 1 days old.
        for age in (1..=10).rev() {
            for org in ["org_a", "org_b"] {
                let time_ms = now - age * day;
                let event = AuditEvent {
                    id: liveproc::ids::new_audit_id(time_ms),
                    time_ms,
                    actor: org.into(),
                    organization_id: org.into(),
                    action: "stream.create".into(),
                    resource: format!("streams/s{age}"),
                    details: String::new(),
                    peer: String::new(),
                };
                registry.record_audit(&event).await.unwrap();
            }
        }
        let ages = |page: Vec<AuditEvent>| -> Vec<i64> {
            page.iter().map(|e| (now - e.time_ms) / day).collect()
        };
        // Older than 5 days: 6..=10 of each, 10 events; at most 4 at once,
        // the oldest first.
        let before = now - 5 * day - 1;
        assert_eq!(registry.prune_audit_events(before, 4).await.unwrap(), 4);
        let all = registry.list_audit_events(None, "", 100).await.unwrap();
        assert_eq!(all.items.len(), 16);
        assert_eq!(ages(all.items)[14..], [8, 8]);
        assert_eq!(registry.prune_audit_events(before, 100).await.unwrap(), 6);
        assert_eq!(registry.prune_audit_events(before, 100).await.unwrap(), 0);
        // What is left, through both listings (the index went too).
        for org in [None, Some("org_a"), Some("org_b")] {
            let page = registry.list_audit_events(org, "", 100).await.unwrap();
            let want: Vec<i64> = (1..=5)
                .flat_map(|age| {
                    if org.is_none() {
                        vec![age, age]
                    } else {
                        vec![age]
                    }
                })
                .collect();
            assert_eq!(ages(page.items), want, "{org:?}");
        }
    })
    .await;
}

/// Waits (by the lease's own clock) until `node` gets `stream`'s lease.
async fn acquire_when_lapsed(
    registry: &Registry,
    stream: &StreamRef,
    node: &str,
    ttl: Duration,
) -> (i64, Option<Fence>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match registry
            .acquire_lease(stream, node, ttl, true)
            .await
            .unwrap()
        {
            LeaseGrant::Granted { lease, taken_from } => return (lease.epoch, taken_from),
            LeaseGrant::HeldBy { .. } => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the lease never lapsed"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_holds_a_session_and_each_takeover_fences_the_last() {
    on_both(|r| async move {
        let cam = StreamRef::new("org_a", "cam");
        let long = Duration::from_secs(30);
        let LeaseGrant::Granted { lease: a, .. } =
            r.acquire_lease(&cam, "node-a", long, true).await.unwrap()
        else {
            panic!("a free stream is granted")
        };
        // Another node is refused, and told who holds it.
        assert_eq!(
            r.acquire_lease(&cam, "node-b", long, true).await.unwrap(),
            LeaseGrant::HeldBy {
                node_id: "node-a".into()
            }
        );
        assert_eq!(
            r.lease_holder(&cam).await.unwrap().unwrap().node_id,
            "node-a"
        );
        // Another stream of the same name in another organization is free.
        let other = StreamRef::new("org_b", "cam");
        assert!(matches!(
            r.acquire_lease(&other, "node-b", long, true).await.unwrap(),
            LeaseGrant::Granted { .. }
        ));
        assert!(r.renew_lease(&a, long).await.unwrap());
        // The holder's own next session takes it back, fencing the last.
        let LeaseGrant::Granted { lease: a2, .. } =
            r.acquire_lease(&cam, "node-a", long, true).await.unwrap()
        else {
            panic!("a node takes its own lease back")
        };
        assert_eq!(a2.epoch, a.epoch + 1);
        assert!(!r.renew_lease(&a, long).await.unwrap());
        let a = a2;

        // A session that ends gives the stream up at once.
        r.release_lease(&a).await.unwrap();
        assert_eq!(r.lease_holder(&cam).await.unwrap(), None);
        let LeaseGrant::Granted {
            lease: b,
            taken_from,
        } = r
            .acquire_lease(&cam, "node-b", Duration::from_millis(300), false)
            .await
            .unwrap()
        else {
            panic!("a released stream is granted, even to a node not yet steady")
        };
        assert_eq!(
            taken_from, None,
            "a released lease leaves nothing to take over"
        );
        assert_eq!(b.epoch, a.epoch + 1);
        // The old holder can neither renew nor release its successor's.
        assert!(!r.renew_lease(&a, long).await.unwrap());
        r.release_lease(&a).await.unwrap();
        assert_eq!(
            r.lease_holder(&cam).await.unwrap().unwrap().node_id,
            "node-b"
        );

        // b stops renewing: after its ttl, a node not steady on the
        // registry does not take it, a steady one takes over with the
        // next epoch, told whose session it took, and b's renewal is
        // refused.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            r.acquire_lease(&cam, "node-a", long, false).await.unwrap(),
            LeaseGrant::HeldBy {
                node_id: "node-b".into()
            }
        );
        let (epoch, taken_from) = acquire_when_lapsed(&r, &cam, "node-a", long).await;
        assert_eq!(epoch, b.epoch + 1);
        assert_eq!(taken_from, Some(b.fence()));
        assert!(!r.renew_lease(&b, long).await.unwrap());
        let holder = r.lease_holder(&cam).await.unwrap().unwrap();
        assert_eq!((holder.node_id.as_str(), holder.epoch), ("node-a", epoch));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_register_and_report() {
    on_both(|r| async move {
        let node = NodeRecord {
            id: "node-a".into(),
            advertise_url: "http://10.0.0.1:50051".into(),
            max_streams: 150,
            live_streams: 3,
            cpu_percent: 41.5,
            draining: false,
            version: "1.2.3".into(),
            started_ms: 1_700_000_000_123,
            heartbeat_age_ms: 0,
        };
        r.heartbeat_node(&node).await.unwrap();
        let again = NodeRecord {
            live_streams: 4,
            ..node.clone()
        };
        r.heartbeat_node(&again).await.unwrap();
        let nodes = r.list_nodes().await.unwrap();
        assert_eq!(nodes.len(), 1, "{nodes:?}");
        assert!((0..5_000).contains(&nodes[0].heartbeat_age_ms), "{nodes:?}");
        assert_eq!(
            NodeRecord {
                heartbeat_age_ms: 0,
                ..nodes[0].clone()
            },
            again
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_racing_for_a_session_get_one_holder() {
    let url = postgres::shared().new_database().await;
    let (a, b) = (
        Registry::connect_postgres(&url).await.unwrap(),
        Registry::connect_postgres(&url).await.unwrap(),
    );
    for i in 0..20 {
        let cam = StreamRef::new("org", format!("cam{i}"));
        let ttl = Duration::from_secs(30);
        let (ga, gb) = tokio::join!(
            a.acquire_lease(&cam, "node-a", ttl, true),
            b.acquire_lease(&cam, "node-b", ttl, true)
        );
        let granted = [ga.unwrap(), gb.unwrap()]
            .into_iter()
            .filter(|g| matches!(g, LeaseGrant::Granted { .. }))
            .count();
        assert_eq!(granted, 1, "cam{i}");
    }
}

fn granted(grant: LeaseGrant) -> Fence {
    match grant {
        LeaseGrant::Granted { lease, .. } => lease.fence(),
        held => panic!("not granted: {held:?}"),
    }
}

fn fenced<T: std::fmt::Debug>(result: liveproc::error::Result<T>) -> bool {
    matches!(result, Err(liveproc::error::Error::Fenced { .. }))
}

/// The fencing of session writes (PostgreSQL: the embedded registry has
/// one node, so no other writer): once node-b holds the stream, node-a's
/// session can neither catalogue a new recording nor update one, record
/// parts or store a clip; node-b takes the old recording over exactly
/// once, and then it is node-b's to write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_of_a_session_taken_over_are_refused() {
    let url = postgres::shared().new_database().await;
    let r = Registry::connect_postgres(&url).await.unwrap();
    let cam = StreamRef::new("org", "cam");
    let short = Duration::from_millis(200);
    let a = granted(r.acquire_lease(&cam, "node-a", short, true).await.unwrap());
    let mut rec = recording("org", "cam", "rec_a1", "ses_a");
    rec.writer = a.clone();
    r.put_recording(&rec, None).await.unwrap();
    let part = |seq: u32| RecordingPart {
        recording_id: "rec_a1".into(),
        seq,
        offset: u64::from(seq) * 100,
        size: 100,
    };
    r.put_recording_part(&a, &part(0)).await.unwrap();
    r.put_clip(&clip("org", "cam", "clip_a1"), Some(&a), None)
        .await
        .unwrap();
    // A writer that is not the recording's is refused.
    let stranger = Fence {
        node_id: "node-c".into(),
        epoch: a.epoch,
    };
    assert!(fenced(r.put_recording_part(&stranger, &part(1)).await));

    // node-a stops renewing; node-b takes over.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let grant = r
        .acquire_lease(&cam, "node-b", Duration::from_secs(30), true)
        .await
        .unwrap();
    let LeaseGrant::Granted { lease, taken_from } = grant else {
        panic!("a lapsed lease is granted")
    };
    assert_eq!(taken_from.as_ref(), Some(&a));
    let b = lease.fence();

    // node-a wakes up: its new records and clips are refused, and so are
    // the updates of its recording once node-b took that over.
    let mut late = recording("org", "cam", "rec_a2", "ses_a");
    late.writer = a.clone();
    r.create_webhook_endpoint(&endpoint("org", "whe_ready", &["recording.ready"]))
        .await
        .unwrap();
    let ready = event("org", "msg_late", "recording.ready");
    assert!(fenced(r.put_recording(&late, Some(&ready)).await));
    assert_eq!(
        r.pending_webhook_messages("whe_ready").await.unwrap(),
        0,
        "a refused write reports nothing"
    );
    assert!(fenced(
        r.put_clip(&clip("org", "cam", "clip_a2"), Some(&a), None)
            .await
    ));
    assert!(r.take_over_recording(&rec, &b).await.unwrap());
    assert!(
        !r.take_over_recording(&rec, &stranger).await.unwrap(),
        "taken over once"
    );
    rec.duration_ns += 1_000_000_000;
    assert!(fenced(r.put_recording(&rec, None).await));
    assert!(fenced(r.put_recording_part(&a, &part(1)).await));
    // Nothing of node-a's got in.
    assert!(r.recording("org", "rec_a2").await.unwrap().is_none());
    assert!(r.clip("org", "clip_a2").await.unwrap().is_none());
    assert_eq!(r.recording_parts("rec_a1").await.unwrap().len(), 1);
    let stored = r.recording("org", "rec_a1").await.unwrap().unwrap();
    assert_eq!(stored.writer, b);
    assert_eq!(stored.duration_ns, 10_000_000_000);

    // node-b writes it; once finished (uploaded) no part is added.
    r.put_recording_part(&b, &part(1)).await.unwrap();
    let mut finished = stored;
    finished.state = RecordingState::Recovered;
    finished.uploaded = true;
    r.put_recording(&finished, None).await.unwrap();
    assert!(fenced(r.put_recording_part(&b, &part(2)).await));
    // node-b's own session writes new records and clips.
    let mut next = recording("org", "cam", "rec_b1", "ses_b");
    next.writer = b.clone();
    r.put_recording(&next, None).await.unwrap();
    r.put_clip(&clip("org", "cam", "clip_b1"), Some(&b), None)
        .await
        .unwrap();
    // A closed recording of node-a's earlier session (on another stream,
    // whose lease node-a released) still uploads after node-b took this
    // one.
    let other = StreamRef::new("org", "cam2");
    let a2 = granted(
        r.acquire_lease(&other, "node-a", short, true)
            .await
            .unwrap(),
    );
    let mut closed = recording("org", "cam2", "rec_a3", "ses_c");
    closed.writer = a2.clone();
    closed.state = RecordingState::Complete;
    r.put_recording(&closed, None).await.unwrap();
    r.release_lease(&liveproc::registry::cluster::Lease {
        stream: other.clone(),
        node_id: "node-a".into(),
        epoch: a2.epoch,
    })
    .await
    .unwrap();
    granted(
        r.acquire_lease(&other, "node-b", short, true)
            .await
            .unwrap(),
    );
    r.put_recording_part(&a2, &part_of("rec_a3", 0))
        .await
        .unwrap();
    closed.uploaded = true;
    r.put_recording(&closed, None).await.unwrap();
}

fn part_of(recording_id: &str, seq: u32) -> RecordingPart {
    RecordingPart {
        recording_id: recording_id.into(),
        seq,
        offset: 0,
        size: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_database_see_each_others_writes() {
    let url = postgres::shared().new_database().await;
    // Started together: the migrations run once (sqlx's advisory lock).
    let (a, b) = tokio::join!(
        Registry::connect_postgres(&url),
        Registry::connect_postgres(&url)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let (org, key) = a.create_organization("shared", true).await.unwrap();
    assert_eq!(
        b.organization_for_api_key(&key).await.unwrap(),
        Some(org.id.clone())
    );
    b.create_stream(&stream(&org.id, "cam"), None)
        .await
        .unwrap();
    let taken = a.create_stream(&stream(&org.id, "cam"), None).await;
    assert!(
        matches!(taken, Err(Error::AlreadyExists { .. })),
        "{taken:?}"
    );
    // Both agree on one URL-signing key, whoever stored it first.
    let (ka, kb) = tokio::join!(
        a.setting_or_insert(setting::URL_SIGNING_KEY, "from-a"),
        b.setting_or_insert(setting::URL_SIGNING_KEY, "from-b")
    );
    assert_eq!(ka.unwrap(), kb.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_unavailable_meanwhile_and_then_works() {
    let mut server = PgServer::start();
    let url = server.new_database().await;
    let registry = Registry::connect_postgres(&url).await.unwrap();
    let (org, key) = registry.create_organization("before", true).await.unwrap();

    server.stop();
    let started = std::time::Instant::now();
    let down = registry.organization(&org.id).await;
    assert!(
        matches!(down, Err(Error::StorageUnavailable(_))),
        "{down:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let message = down.unwrap_err().to_string();
    assert!(!message.contains(PG_PASSWORD), "{message}");

    server.restart();
    // The pool replaces its dead connections: no call stays wedged.
    let found = registry.organization_for_api_key(&key).await.unwrap();
    assert_eq!(found, Some(org.id.clone()));
    registry.create_organization("after", true).await.unwrap();
    registry.probe_write().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://postgres:{PG_PASSWORD}@127.0.0.1:{port}/nothing");
    let error = match Registry::connect_postgres(&url).await {
        Ok(_) => panic!("connected to a port nothing listens on"),
        Err(e) => e,
    };
    assert!(matches!(error, Error::StorageUnavailable(_)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("cannot connect"), "{message}");
    assert!(!message.contains(PG_PASSWORD), "{message}");
}

fn endpoint(org: &str, id: &str, types: &[&str]) -> WebhookEndpointRecord {
    WebhookEndpointRecord {
        id: id.into(),
        organization_id: org.into(),
        url: format!("https://hooks.example.com/{id}"),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        previous_secret: None,
        previous_secret_until_ms: 0,
        enabled: true,
        disabled_reason: String::new(),
        failing_since_ms: 0,
        create_time_ms: 1_700_000_000_000,
    }
}

fn event(org: &str, id: &str, event_type: &str) -> WebhookEvent {
    WebhookEvent {
        id: id.into(),
        organization_id: org.into(),
        event_type: event_type.into(),
        time_ms: 1_700_000_000_000,
        data: r#"{"id":"x"}"#.into(),
        media_path: String::new(),
        endpoint_id: None,
    }
}

fn attempt_result(
    message: &WebhookMessage,
    outcome: AttemptOutcome,
    time_ms: i64,
    disable_if_failing_since: i64,
) -> AttemptResult {
    AttemptResult {
        attempt: WebhookAttempt {
            endpoint_id: message.endpoint_id.clone(),
            event_id: message.event.id.clone(),
            event_type: message.event.event_type.clone(),
            attempt: message.attempts + 1,
            time_ms,
            status: if outcome == AttemptOutcome::Delivered {
                204
            } else {
                500
            },
            error: if outcome == AttemptOutcome::Delivered {
                String::new()
            } else {
                "HTTP 500".into()
            },
            duration_ms: 3,
            outcome,
            next_attempt_ms: if outcome == AttemptOutcome::Retrying {
                time_ms
            } else {
                0
            },
        },
        disable_if_failing_since,
    }
}

/// The outbox on both backends: an event is queued with the change that
/// carries it, once per endpoint of the organization that takes its type;
/// a claimed message is not handed out twice; a retried one comes back;
/// a delivered one leaves; attempts are listed newest first; an endpoint
/// failing past the limit is disabled and takes no new events; deleting
/// an endpoint drops what waited for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_events_are_queued_with_their_change_and_leave_once_delivered() {
    on_both(|r| async move {
        for e in [
            endpoint("org", "whe_ready", &["recording.ready"]),
            endpoint("org", "whe_live", &["stream.live"]),
            endpoint("org2", "whe_other", &["recording.ready"]),
        ] {
            r.create_webhook_endpoint(&e).await.unwrap();
        }
        let ready = event("org", "msg_1", "recording.ready");
        r.put_recording(&recording("org", "cam", "rec_1", "ses_a"), Some(&ready))
            .await
            .unwrap();
        assert_eq!(r.pending_webhook_messages("whe_ready").await.unwrap(), 1);
        assert_eq!(r.pending_webhook_messages("whe_live").await.unwrap(), 0);
        assert_eq!(r.pending_webhook_messages("whe_other").await.unwrap(), 0);

        let now = 1_700_000_001_000;
        let due = r
            .due_webhook_messages(now, 30_000, 10, 4, &[])
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        let (message, with) = &due[0];
        assert_eq!(
            (message.event.id.as_str(), with.id.as_str()),
            ("msg_1", "whe_ready")
        );
        assert_eq!(message.event.data, r#"{"id":"x"}"#);
        assert!(
            r.due_webhook_messages(now, 30_000, 10, 4, &[])
                .await
                .unwrap()
                .is_empty(),
            "a claimed message is not handed out again"
        );
        let disabled = r
            .finish_webhook_attempt(
                message,
                &attempt_result(message, AttemptOutcome::Retrying, now, 0),
            )
            .await
            .unwrap();
        assert!(!disabled);
        let again = r
            .due_webhook_messages(now, 30_000, 10, 4, &[])
            .await
            .unwrap();
        assert_eq!(again.len(), 1, "a retried message is due again");
        assert_eq!(again[0].0.attempts, 1);
        assert!(
            r.due_webhook_messages(now, 30_000, 10, 4, &["whe_ready".into()])
                .await
                .unwrap()
                .is_empty(),
            "a busy endpoint's messages wait"
        );
        r.finish_webhook_attempt(
            &again[0].0,
            &attempt_result(&again[0].0, AttemptOutcome::Delivered, now + 1, 0),
        )
        .await
        .unwrap();
        assert_eq!(r.pending_webhook_messages("whe_ready").await.unwrap(), 0);
        let attempts = r.webhook_attempts("whe_ready", "", 1).await.unwrap();
        assert_eq!(attempts.items.len(), 1);
        assert_eq!(attempts.items[0].outcome, AttemptOutcome::Delivered);
        let older = r
            .webhook_attempts("whe_ready", &attempts.next_page_token, 10)
            .await
            .unwrap();
        assert_eq!(older.items.len(), 1);
        assert_eq!(older.items[0].outcome, AttemptOutcome::Retrying);
        assert!(older.next_page_token.is_empty());

        // A stand-alone event, failing past the limit: the endpoint is
        // disabled and takes no new events.
        r.queue_webhook_event(&event("org", "msg_2", "stream.live"))
            .await
            .unwrap();
        let due = r
            .due_webhook_messages(now, 30_000, 10, 4, &[])
            .await
            .unwrap();
        assert_eq!(due.len(), 1);
        let disabled = r
            .finish_webhook_attempt(
                &due[0].0,
                &attempt_result(&due[0].0, AttemptOutcome::GaveUp, now, now),
            )
            .await
            .unwrap();
        assert!(disabled);
        let live = r
            .webhook_endpoint("org", "whe_live")
            .await
            .unwrap()
            .unwrap();
        assert!(!live.enabled);
        assert!(
            live.disabled_reason.contains("HTTP 500"),
            "{}",
            live.disabled_reason
        );
        r.queue_webhook_event(&event("org", "msg_3", "stream.live"))
            .await
            .unwrap();
        assert_eq!(r.pending_webhook_messages("whe_live").await.unwrap(), 0);
        // ... but a test event reaches it.
        r.queue_webhook_event(&WebhookEvent {
            endpoint_id: Some("whe_live".into()),
            ..event("org", "msg_4", "webhook.test")
        })
        .await
        .unwrap();
        assert_eq!(r.pending_webhook_messages("whe_live").await.unwrap(), 1);
        assert!(r
            .webhook_endpoint("org2", "whe_live")
            .await
            .unwrap()
            .is_none());
        assert!(!r.delete_webhook_endpoint("org2", "whe_live").await.unwrap());
        assert!(r.delete_webhook_endpoint("org", "whe_live").await.unwrap());
        assert_eq!(r.pending_webhook_messages("whe_live").await.unwrap(), 0);
        assert_eq!(r.prune_webhook_attempts(now + 10).await.unwrap(), 2);
    })
    .await;
}
