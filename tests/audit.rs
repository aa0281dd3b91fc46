//! The audit log against the real server: every operator and
//! organization action it covers is recorded with its actor, time,
//! action, resource and client address, without a secret; the operator
//! reads all of it (or one organization's), an organization only its own.

mod common;

use common::*;
use liveproc::proto::v1 as pb;
use liveproc::proto::v1::webhooks_client::WebhooksClient;
use pb::StreamState;
use tonic::Code;

async fn audit_page(
    server: &Server,
    key: &str,
    organization_id: &str,
    page_size: u32,
    page_token: &str,
) -> Result<pb::ListAuditEventsResponse, tonic::Status> {
    server
        .admin()
        .await
        .list_audit_events(authed(
            pb::ListAuditEventsRequest {
                organization_id: organization_id.into(),
                page_size,
                page_token: page_token.into(),
            },
            key,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Every event `key` may read of `organization_id`, newest first, page
/// by page.
async fn audit_log(server: &Server, key: &str, organization_id: &str) -> Vec<pb::AuditEvent> {
    let mut events = Vec::new();
    let mut token = String::new();
    loop {
        let page = audit_page(server, key, organization_id, 3, &token)
            .await
            .expect("ListAuditEvents");
        events.extend(page.events);
        if page.next_page_token.is_empty() {
            return events;
        }
        token = page.next_page_token;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_action_is_audited_with_its_actor_and_no_secret() {
    let server = Server::builder()
        .flags(&["--webhook-allow", "127.0.0.1"])
        .start();
    let acme = server.create_org("acme", false).await;
    let other = server.create_org("other", true).await;
    let admin = server.admin().await;

    // The operator's actions on acme.
    admin
        .clone()
        .set_packages(authed(
            pb::SetPackagesRequest {
                organization_id: acme.id.clone(),
                live_processing: true,
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap();
    admin
        .clone()
        .set_quotas(authed(
            pb::SetQuotasRequest {
                organization_id: acme.id.clone(),
                quotas: Some(pb::Quotas {
                    streams: 10,
                    ..Default::default()
                }),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap();
    let rotated = admin
        .clone()
        .rotate_api_key(authed(
            pb::RotateApiKeyRequest {
                organization_id: acme.id.clone(),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner();
    let key = rotated.api_key.as_str();

    // acme's own actions.
    admin
        .clone()
        .revoke_signed_urls(authed(pb::RevokeSignedUrlsRequest::default(), key))
        .await
        .unwrap();
    let processing = pb::ProcessingOptions {
        replay: replay_options(30).replay,
        ..recording_options(0)
    };
    let stream = create_stream(&server, key, "cam", Some(processing))
        .await
        .unwrap();
    let mut watch = Watcher::start(&server, key, "cam").await;
    let publisher = srt_publish(&server.srt_url(&stream), test_ts());
    assert!(within(40, "ffmpeg", wait_child(publisher)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    // Cut from the replay the ended session left.
    let clip = create_clip(&server, key, "cam", 2, "goal").await;
    let recordings = until_all_complete(&server, key, "cam", 30, |_| true).await;
    let live = server.live().await;
    live.clone()
        .update_processing(authed(
            pb::UpdateProcessingRequest {
                stream_id: "cam".into(),
                processing: Some(thumbnails_every_10s()),
            },
            key,
        ))
        .await
        .unwrap();
    let new_stream_key = live
        .clone()
        .rotate_stream_key(authed(
            pb::RotateStreamKeyRequest {
                stream_id: "cam".into(),
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner()
        .ingest
        .unwrap()
        .stream_key;
    live.clone()
        .delete_replay_clip(authed(
            pb::DeleteReplayClipRequest {
                clip_id: clip.id.clone(),
            },
            key,
        ))
        .await
        .unwrap();
    live.clone()
        .delete_recording(authed(
            pb::DeleteRecordingRequest {
                recording_id: recordings[0].id.clone(),
            },
            key,
        ))
        .await
        .unwrap();
    let mut webhooks = WebhooksClient::new(server.channel().await);
    let endpoint = webhooks
        .create_webhook_endpoint(authed(
            pb::CreateWebhookEndpointRequest {
                url: "http://127.0.0.1:9/hook?token=hook-secret-token".into(),
                event_types: vec!["stream.live".into()],
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    webhooks
        .update_webhook_endpoint(authed(
            pb::UpdateWebhookEndpointRequest {
                endpoint_id: endpoint.id.clone(),
                enabled: Some(false),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap();
    webhooks
        .delete_webhook_endpoint(authed(
            pb::DeleteWebhookEndpointRequest {
                endpoint_id: endpoint.id.clone(),
            },
            key,
        ))
        .await
        .unwrap();
    let encrypted = live
        .clone()
        .create_stream(authed(
            pb::CreateStreamRequest {
                stream_id: "secret".into(),
                srt_encryption: Some(pb::SrtEncryption {
                    passphrase: "a-passphrase-never-logged".into(),
                    key_length: 32,
                }),
                ..Default::default()
            },
            key,
        ))
        .await
        .unwrap()
        .into_inner();
    delete_stream(&server, key, "secret").await;

    // What acme reads of its log: each action, newest first, by whom.
    let log = audit_log(&server, key, "").await;
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .rev()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.resource.as_str()))
        .collect();
    let org_resource = format!("organizations/{}", acme.id);
    let endpoint_resource = format!("webhook_endpoints/{}", endpoint.id);
    let clip_resource = format!("clips/{}", clip.id);
    let recording_resource = format!("recordings/{}", recordings[0].id);
    let want: Vec<(&str, &str, &str)> = vec![
        ("organization.create", "admin", &org_resource),
        ("organization.packages.set", "admin", &org_resource),
        ("organization.quotas.set", "admin", &org_resource),
        ("organization.api_key.rotate", "admin", &org_resource),
        ("organization.signed_urls.revoke", &acme.id, &org_resource),
        ("stream.create", &acme.id, "streams/cam"),
        ("stream.processing.update", &acme.id, "streams/cam"),
        ("stream.key.rotate", &acme.id, "streams/cam"),
        ("clip.delete", &acme.id, &clip_resource),
        ("recording.delete", &acme.id, &recording_resource),
        ("webhook_endpoint.create", &acme.id, &endpoint_resource),
        ("webhook_endpoint.update", &acme.id, &endpoint_resource),
        ("webhook_endpoint.delete", &acme.id, &endpoint_resource),
        ("stream.create", &acme.id, "streams/secret"),
        ("stream.delete", &acme.id, "streams/secret"),
    ];
    assert_eq!(seen, want);
    let ids: std::collections::HashSet<&str> = log.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids.len(), log.len(), "a page repeated an event");
    for event in &log {
        assert_eq!(event.organization_id, acme.id);
        assert_eq!(event.peer, "127.0.0.1", "{event:?}");
        assert!(event.time.is_some());
    }
    let details = |action: &str, resource: &str| -> serde_json::Value {
        let event = log
            .iter()
            .find(|e| e.action == action && e.resource == resource)
            .unwrap();
        serde_json::from_str(&event.details).unwrap()
    };
    assert_eq!(
        details("organization.quotas.set", &org_resource)["streams"],
        10
    );
    assert_eq!(
        details("stream.create", "streams/secret")["srt_encryption"],
        32
    );
    assert_eq!(
        details("stream.processing.update", "streams/cam")["features"],
        serde_json::json!(["thumbnail"])
    );
    // No secret in any of it.
    let text = format!("{log:?}");
    for secret in [
        rotated.api_key.as_str(),
        acme.api_key.as_str(),
        stream.ingest.as_ref().unwrap().stream_key.as_str(),
        new_stream_key.as_str(),
        "a-passphrase-never-logged",
        "hook-secret-token",
        endpoint.secret.as_str(),
        encrypted.ingest.as_ref().unwrap().stream_key.as_str(),
    ] {
        assert!(
            !text.contains(secret),
            "a secret in the audit log: {secret}"
        );
    }

    // The operator reads every organization's, or one's; an organization
    // never another's.
    let all = audit_log(&server, ADMIN_KEY, "").await;
    assert!(all
        .iter()
        .any(|e| e.organization_id == other.id && e.action == "organization.create"));
    assert_eq!(all.len(), log.len() + 1);
    assert_eq!(audit_log(&server, ADMIN_KEY, &acme.id).await, log);
    let theirs = audit_log(&server, &other.api_key, "").await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    let status = audit_page(&server, &other.api_key, &acme.id, 10, "")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}
