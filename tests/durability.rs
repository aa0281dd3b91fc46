//! The registry survives a clean restart and `kill -9`: organizations,
//! keys, packages and streams (with their ids, keys and options) are all
//! there afterwards, and the generated admin key keeps working.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use tonic::Code;

fn options() -> pb::ProcessingOptions {
    pb::ProcessingOptions {
        thumbnail: Some(pb::ThumbnailOptions {
            enabled: true,
            interval_seconds: 15,
            ..Default::default()
        }),
        replay: Some(pb::ReplayOptions {
            enabled: true,
            duration_seconds: 0,
            entire_stream: true,
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_survives_restart_and_kill9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");

    let server = Server::builder().data_dir(&data).start();
    let org = server.create_org("acme", true).await;
    let before = create_stream(&server, &org.api_key, "cam", Some(options()))
        .await
        .unwrap();
    let generated = create_stream(&server, &org.api_key, "", None)
        .await
        .unwrap();
    assert!(!generated.id.is_empty());
    server.stop();

    // Clean restart.
    let server = Server::builder().data_dir(&data).start();
    let after = get_stream(&server, &org.api_key, "cam").await.unwrap();
    assert_eq!(after.processing, before.processing);
    assert_eq!(
        after.ingest.as_ref().unwrap().stream_key,
        before.ingest.as_ref().unwrap().stream_key,
        "stream key is stable"
    );
    assert_eq!(after.create_time, before.create_time);
    assert_eq!(after.state(), pb::StreamState::Idle);
    get_stream(&server, &org.api_key, &generated.id)
        .await
        .unwrap();

    // Changes made just before a kill -9 are kept too.
    let other = server.create_org("other", false).await;
    create_stream(&server, &other.api_key, "late", None)
        .await
        .unwrap();
    server
        .admin()
        .await
        .set_packages(authed(
            pb::SetPackagesRequest {
                organization_id: other.id.clone(),
                live_processing: true,
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap();
    server.kill9();

    let server = Server::builder().data_dir(&data).start();
    get_stream(&server, &other.api_key, "late").await.unwrap();
    get_stream(&server, &org.api_key, "cam").await.unwrap();
    let fetched = server
        .admin()
        .await
        .get_organization(authed(
            pb::GetOrganizationRequest {
                id: other.id.clone(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        fetched.packages.unwrap().live_processing(),
        pb::PackageState::Enabled
    );
    let orgs = server
        .admin()
        .await
        .list_organizations(authed(pb::ListOrganizationsRequest::default(), ADMIN_KEY))
        .await
        .unwrap()
        .into_inner()
        .organizations;
    assert_eq!(orgs.len(), 2);
    assert!(orgs.iter().all(|o| o.api_key.is_empty()));

    // The registry holds key hashes, never keys.
    let store = match &server.database_url {
        Some(url) => common::postgres::dump(url).await.into_bytes(),
        None => std::fs::read(data.join("registry.redb")).unwrap(),
    };
    assert!(!store.is_empty());
    let contains = |needle: &str| store.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(!contains(&org.api_key) && !contains(&other.api_key));
    // ... and it is the store that was read: the hashes are there.
    let hash = liveproc::registry::secrets::hash_key(&org.api_key);
    assert!(contains(&hash));
    assert!(!contains(ADMIN_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_admin_key_is_printed_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().data_dir(&data).admin_key(None).start();
    let key = server
        .printed
        .iter()
        .find_map(|l| {
            l.trim()
                .strip_prefix("lpadmin_")
                .map(|k| format!("lpadmin_{k}"))
        })
        .expect("the generated admin key is printed");
    let saved = std::fs::read_to_string(data.join("admin.key")).unwrap();
    assert_eq!(saved.trim(), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.join("admin.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "admin.key readable by others: {mode:o}");
    }
    let org = server
        .admin()
        .await
        .create_organization(authed(
            pb::CreateOrganizationRequest {
                name: "acme".into(),
                live_processing: false,
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    server.stop();

    let server = Server::builder().data_dir(&data).admin_key(None).start();
    assert!(
        !server.printed.iter().any(|l| l.contains("lpadmin_")),
        "printed only once: {:?}",
        server.printed
    );
    server
        .admin()
        .await
        .get_organization(authed(pb::GetOrganizationRequest { id: org.id }, &key))
        .await
        .unwrap();
    let status = server
        .admin()
        .await
        .list_organizations(authed(
            pb::ListOrganizationsRequest::default(),
            "lpadmin_guess",
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_live_sessions_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Server::builder().data_dir(&data).start();
    let org = server.create_org("acme", true).await;
    let stream = create_stream(&server, &org.api_key, "cam", None)
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, &org.api_key, "cam").await;
    let push = Push::open(&server, &stream, None).await;
    assert!(push.send(&std::fs::read(test_ts()).unwrap()).await);
    watch.until_state(pb::StreamState::Live, 20).await;

    // The publisher is still connected; stop() asserts a clean exit.
    let stopping = tokio::task::spawn_blocking(move || server.stop());
    watch.until_state(pb::StreamState::Ended, 20).await;
    within(30, "server to exit", stopping).await.unwrap();
    let _ = push.outcome().await;

    let server = Server::builder().data_dir(&data).start();
    assert_eq!(
        get_stream(&server, &org.api_key, "cam")
            .await
            .unwrap()
            .state(),
        pb::StreamState::Idle
    );
}
