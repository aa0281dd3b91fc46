//! What rotations revoke, against the real server: `RotateStreamKey`
//! refuses the old publish key at once and disconnects the publisher live
//! with it (SRT and gRPC push), while the new key publishes;
//! `RevokeSignedUrls` and `RotateApiKey` refuse the URLs an organization
//! signed before, and only that organization's.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;
use tonic::Code;

async fn rotate_stream_key(server: &Server, key: &str, stream_id: &str) -> pb::Stream {
    server
        .live()
        .await
        .rotate_stream_key(authed(
            pb::RotateStreamKeyRequest {
                stream_id: stream_id.into(),
            },
            key,
        ))
        .await
        .expect("RotateStreamKey")
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_stream_key_disconnects_its_publisher_and_the_new_one_publishes() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let old = create_stream(&server, key, "cam", Some(thumbnails_every_10s()))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let publisher = srt_publish(&server.srt_url(&old), test_ts_25s());
    watch.until_state(StreamState::Live, 20).await;

    let new = rotate_stream_key(&server, key, "cam").await;
    let (old_key, new_key) = (
        &old.ingest.as_ref().unwrap().stream_key,
        &new.ingest.as_ref().unwrap().stream_key,
    );
    assert_ne!(old_key, new_key);
    assert!(new
        .ingest
        .as_ref()
        .unwrap()
        .srt_url
        .contains(new_key.as_str()));
    // The live publisher is let go at once, with the reason.
    let ended = watch.until_state(StreamState::Error, 5).await;
    assert!(ended.message.contains("rotated"), "{}", ended.message);
    let exit = within(20, "the old publisher to be closed", wait_child(publisher)).await;
    assert!(!exit.success(), "ffmpeg went on to its end");

    // The old key is refused, over SRT and gRPC push alike.
    let refused = srt_publish(&server.srt_url(&old), test_ts());
    let exit = within(
        30,
        "ffmpeg with the old key to give up",
        wait_child(refused),
    )
    .await;
    assert!(!exit.success(), "the old key was accepted over SRT");
    let push = Push::open(&server, &old, None).await;
    let outcome = within(10, "a push with the old key", push.outcome()).await;
    assert_eq!(outcome.unwrap_err().code(), Code::Unauthenticated);

    // The new key publishes.
    let publisher = srt_publish(&server.srt_url(&new), test_ts());
    watch.until_state(StreamState::Live, 20).await;
    let _ = within(30, "the new publisher to end", wait_child(publisher)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_live_with_a_rotated_key_ends_unauthenticated() {
    let server = Server::start();
    let org = server.create_org("acme", true).await;
    let key = org.api_key.as_str();
    let stream = create_stream(&server, key, "cam", None).await.unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let push = Push::open(&server, &stream, None).await;
    let media = std::fs::read(test_ts_25s()).unwrap();
    let pushing = tokio::spawn(async move {
        push.send(&media).await;
        push
    });
    watch.until_state(StreamState::Live, 20).await;
    rotate_stream_key(&server, key, "cam").await;
    let push = within(10, "the push to be cut", pushing).await.unwrap();
    let status = within(10, "the push's answer", push.outcome())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(status.message().contains("rotated"), "{status:?}");
}

async fn status_of(server: &Server, url: &str) -> u16 {
    get(server, url, None).await.status().as_u16()
}

async fn revoke(
    server: &Server,
    key: &str,
    organization_id: &str,
) -> Result<pb::Organization, tonic::Status> {
    server
        .admin()
        .await
        .revoke_signed_urls(authed(
            pb::RevokeSignedUrlsRequest {
                organization_id: organization_id.into(),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_signed_urls_are_refused_and_only_the_organizations() {
    let server = Server::start();
    let acme = server.create_org("acme", true).await;
    let other = server.create_org("other", true).await;
    for org in [&acme, &other] {
        create_stream(&server, &org.api_key, "cam", Some(thumbnails_every_10s()))
            .await
            .unwrap();
    }
    let path = "/v1/streams/cam/thumbnail.jpg";
    // A stream with no thumbnail yet: a token that opens the path gets
    // 404, one that does not gets 403.
    let before = sign(&server, &acme.api_key, path, 600).await.url;
    let others = sign(&server, &other.api_key, path, 600).await.url;
    assert_eq!(status_of(&server, &before).await, 404);

    // The organization revokes its own links (no id: its own).
    revoke(&server, &acme.api_key, "")
        .await
        .expect("RevokeSignedUrls");
    assert_eq!(status_of(&server, &before).await, 403);
    assert_eq!(
        status_of(&server, &others).await,
        404,
        "another organization's link"
    );
    let after = sign(&server, &acme.api_key, path, 600).await.url;
    assert_eq!(status_of(&server, &after).await, 404, "a link signed after");
    // Not another organization's links.
    let refused = revoke(&server, &acme.api_key, &other.id).await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    assert_eq!(status_of(&server, &others).await, 404);

    // Rotating the API key revokes its links too (the operator does it).
    let rotated = server
        .admin()
        .await
        .rotate_api_key(authed(
            pb::RotateApiKeyRequest {
                organization_id: acme.id.clone(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status_of(&server, &after).await, 403);
    let fresh = sign(&server, &rotated.api_key, path, 600).await.url;
    assert_eq!(status_of(&server, &fresh).await, 404);
    // The operator revokes any organization's links, by id.
    revoke(&server, ADMIN_KEY, &other.id).await.unwrap();
    assert_eq!(status_of(&server, &others).await, 403);
}
