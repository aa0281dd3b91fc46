//! The dashboard in a real browser (headless Chromium over WebDriver)
//! against the real server, with media over SRT: sign-in by form and by
//! `#key=`, "Upgrade needed" until the operator enables the package in
//! the operator view (which also creates an organization and shows its key
//! once), stream creation with a field error then success, a live
//! thumbnail that appears and updates, the replay player playing and
//! seeking back, a clip share link that downloads a playable MP4,
//! processing changed on the live stream, and recordings played alone and
//! as a session. Screenshots are kept as artifacts
//! (`target/tmp/dashboard-screenshots/`).

mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::*;
use liveproc::proto::v1 as pb;
use pb::StreamState;

const CONTACT: &str = "Write to sales@liveproc.example to upgrade.";

fn page(server: &Server, rest: &str) -> String {
    format!("http://{}/{rest}", server.grpc)
}

/// Opens the dashboard signed in with `key` (`#key=`).
async fn sign_in(browser: &Browser, server: &Server, key: &str) {
    browser
        .open_fresh(&page(server, &format!("#key={key}")))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organizations_and_the_operator_use_the_dashboard_in_a_browser() {
    let server = Server::builder()
        .flags(&["--operator-contact", CONTACT])
        .start();
    let acme = server.create_org("Acme Auctions", true).await;
    let basic = server.create_org("Basic Bets", false).await;
    let browser = Browser::start(1280, 900).await;
    let package = "[data-package=live_processing]";

    // Sign-in by the form.
    browser.open_fresh(&page(&server, "")).await;
    browser.fill("input[name=api_key]", &acme.api_key).await;
    browser.click("form.signin button").await;
    let who = browser.text("[data-testid=signed-in-as]").await;
    assert_eq!(who, "Acme Auctions");
    assert_eq!(browser.text(package).await, "Enabled");

    // Without the package, by #key=: "Upgrade needed", with the contact.
    sign_in(&browser, &server, &basic.api_key).await;
    let text = browser.text(package).await;
    assert!(text.contains("Upgrade needed"), "{text}");
    assert!(text.contains(CONTACT), "{text}");
    browser.screenshot("upgrade-needed").await;
    // The key left the address bar.
    let url = browser.client.current_url().await.unwrap();
    assert!(!url.as_str().contains(&basic.api_key), "{url}");

    // The operator enables it...
    sign_in(&browser, &server, ADMIN_KEY).await;
    let row = format!("tr[data-organization={}]", basic.id);
    let toggle = browser.find(&format!("{row} input[type=checkbox]")).await;
    assert!(!toggle.is_selected().await.unwrap());
    toggle.click().await.unwrap();
    browser
        .until(
            "the package switched on",
            &format!("document.querySelector('{row} small').textContent.includes('enabled')"),
        )
        .await;
    // ... creates an organization, whose key it sees once...
    browser
        .fill("input[name=organization_name]", "Casino Royale")
        .await;
    browser.click(".operator form button.primary").await;
    let new_key = browser.text("[data-testid=new-api-key]").await;
    let created = server
        .admin()
        .await
        .get_organization(authed(pb::GetOrganizationRequest::default(), &new_key))
        .await
        .expect("the key shown works")
        .into_inner();
    assert_eq!(created.name, "Casino Royale");
    browser
        .find(&format!("tr[data-organization={}]", created.id))
        .await;
    browser.screenshot("operator").await;
    // ... and the organization's page shows "Enabled".
    sign_in(&browser, &server, &basic.api_key).await;
    assert_eq!(browser.text(package).await, "Enabled");

    // Creating a stream: an out-of-range interval shows the field's error.
    server
        .admin()
        .await
        .set_quotas(authed(
            pb::SetQuotasRequest {
                organization_id: acme.id.clone(),
                quotas: Some(pb::Quotas {
                    streams: 5,
                    ..Default::default()
                }),
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap();
    sign_in(&browser, &server, &acme.api_key).await;
    browser.click("a[href='#/new']").await;
    browser.fill("input[name=name]", "Lot cam").await;
    browser.fill("input[name=stream_id]", "cam").await;
    // Its SRT publishers must encrypt, with AES-256.
    browser
        .eval("(() => { const s = document.querySelector('select[name=srt_encryption]'); s.value = '32'; return s.value; })()")
        .await;
    let next = ".create form button.primary";
    browser.click(next).await;
    let interval = "input[name='processing.thumbnail.interval_seconds']";
    browser.fill(interval, "5").await;
    for feature in ["motion_clip", "recording", "replay"] {
        browser
            .click(&format!("input[name='processing.{feature}.enabled']"))
            .await;
    }
    browser
        .fill("input[name='processing.recording.duration_seconds']", "10")
        .await;
    browser.click(next).await;
    let error = browser
        .until(
            "the interval's error",
            "document.querySelector(\"[data-error-for='processing.thumbnail.interval_seconds']\").textContent",
        )
        .await;
    assert!(error.as_str().unwrap().contains("10–3600"), "{error}");
    browser.screenshot("create-stream-error").await;
    // A valid one is created and listed.
    browser.fill(interval, "10").await;
    browser.click(next).await;
    browser.find(".stream-page").await;
    let stream = get_stream(&server, &acme.api_key, "cam").await.unwrap();
    let processing = stream.processing.unwrap();
    assert_eq!(processing.thumbnail.unwrap().interval_seconds, 10);
    assert!(processing.replay.unwrap().enabled);
    let encryption = stream
        .ingest
        .as_ref()
        .unwrap()
        .srt_encryption
        .clone()
        .unwrap();
    assert_eq!(encryption.key_length, 32);
    let shown = browser.text("[data-ingest='SRT key length'] code").await;
    assert_eq!(shown, "AES-256");
    // A new stream key from the stream page: the page shows it.
    let old_key = stream.ingest.as_ref().unwrap().stream_key.clone();
    browser.eval("(window.confirm = () => true) && true").await;
    browser.click("[data-testid=rotate-stream-key]").await;
    let srt = "document.querySelector(\"[data-ingest='SRT'] code\").textContent";
    browser
        .until(
            "the new stream key on the page",
            &format!("!{srt}.includes('{old_key}') && {srt}.includes('sk_')"),
        )
        .await;
    let stream = get_stream(&server, &acme.api_key, "cam").await.unwrap();
    assert_ne!(stream.ingest.as_ref().unwrap().stream_key, old_key);
    let shown = browser.text("[data-ingest='SRT'] code").await;
    assert_eq!(shown, stream.ingest.as_ref().unwrap().srt_url);
    browser.client.goto(&page(&server, "#/")).await.unwrap();
    browser.find("article[data-stream=cam]").await;
    // The organization's usage of its quotas.
    let streams = browser
        .until(
            "the streams quota",
            "document.querySelector('[data-quota=streams]')?.textContent",
        )
        .await;
    assert_eq!(streams.as_str().unwrap(), "Streams1of 5", "{streams}");

    // Live: the list's thumbnail appears, then updates.
    let mut watch = Watcher::start(&server, &acme.api_key, "cam").await;
    let ffmpeg = srt_publish(&stream.ingest.as_ref().unwrap().srt_url, test_ts_45s());
    let card = "document.querySelector('article[data-stream=cam] img.thumb')";
    let first = browser
        .until(
            "a thumbnail in the list",
            &format!("{card} && {card}.naturalWidth > 0 && {card}.dataset.etag"),
        )
        .await;
    let width = browser.eval(&format!("{card}.naturalWidth")).await;
    assert_eq!(width, serde_json::json!(640));
    browser
        .until(
            "a newer thumbnail in the list",
            &format!("{card}.dataset.etag && {card}.dataset.etag !== {first}"),
        )
        .await;
    browser
        .until(
            "the list showing the stream live",
            "document.querySelector('article[data-stream=cam] .badge').dataset.state === 'live'",
        )
        .await;
    browser.screenshot("streams").await;

    // The stream page: the replay player plays...
    browser
        .client
        .goto(&page(&server, "#/streams/cam"))
        .await
        .unwrap();
    let video = "document.querySelector('.player video')";
    let clock = "document.querySelector('[data-testid=program-date]')";
    browser
        .until(
            "the replay playing",
            &format!("{video} && {video}.currentTime > 1"),
        )
        .await;
    let before = browser
        .until("a program date", &format!("{clock}.dataset.programDate"))
        .await;
    let played = browser.eval(&format!("{video}.currentTime")).await;
    browser
        .until(
            "the replay advancing",
            &format!("{video}.currentTime > {played} + 1"),
        )
        .await;
    // ... over low-latency HLS, close behind the media's arrival at the
    // server (program dates are arrival times): sampled as the clock
    // updates, a quarter second apart, for five seconds.
    let mut behind = vec![];
    for _ in 0..20 {
        let ms = browser
            .eval(&format!("Number({clock}.dataset.behindMs)"))
            .await;
        behind.push(ms.as_f64().unwrap());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    behind.sort_by(f64::total_cmp);
    eprintln!(
        "hls.js in Chromium behind arrival: median {:.0} ms, max {:.0} ms ({behind:?})",
        behind[10], behind[19]
    );
    assert!(behind[19] <= 2000.0, "behind live by {behind:?} ms");
    browser.screenshot("stream-page").await;
    // ... where to publish, over SRT and RTMP (as OBS asks for it) ...
    let info = get_stream(&server, &acme.api_key, "cam")
        .await
        .unwrap()
        .ingest
        .expect("ingest");
    for (row, want) in [
        ("SRT", &info.srt_url),
        ("RTMP", &info.rtmp_url),
        ("OBS Server", &info.rtmp_server),
        ("OBS Stream Key", &info.rtmp_stream_key),
    ] {
        let shown = browser.text(&format!("[data-ingest='{row}'] code")).await;
        assert_eq!(&shown, want, "{row}");
    }
    assert!(info.rtmp_url.starts_with("rtmp://"));
    // ... shows the picture under the pointer on the rewind bar (the
    // storyboard loads on the first hover) ...
    let hover = |fraction: f64| {
        format!(
            "(() => {{ const r = document.querySelector('.rewind'); \
             const b = r.getBoundingClientRect(); \
             const at = {{ clientX: b.left + b.width * {fraction}, clientY: b.top + b.height / 2 }}; \
             r.dispatchEvent(new PointerEvent('pointerenter', at)); \
             r.dispatchEvent(new PointerEvent('pointermove', at)); return true; }})()"
        )
    };
    let preview = "document.querySelector('[data-testid=storyboard-preview]')";
    let shown = format!("!{preview}.hidden && {preview}.dataset.time");
    let earliest = browser
        .until(
            "a storyboard tile at the bar's start",
            &format!("{} && {shown}", hover(0.02)),
        )
        .await;
    browser
        .until(
            "a later tile at the bar's end",
            &format!(
                "{} && {shown} && Date.parse({preview}.dataset.time) > Date.parse({earliest}) && {shown}",
                hover(0.98)
            ),
        )
        .await;
    browser
        .eval(&format!(
            "(() => {{ window.sheet = new Image(); \
             window.sheet.src = {preview}.style.backgroundImage.slice(5, -2); return true; }})()"
        ))
        .await;
    browser
        .until(
            "the tile's sprite sheet loaded",
            "window.sheet.complete && window.sheet.naturalWidth >= 160",
        )
        .await;
    browser
        .eval("(() => { document.querySelector('.rewind').scrollIntoView({ block: 'center' }); return true; })()")
        .await;
    browser.eval(&hover(0.3)).await;
    browser.screenshot("storyboard-hover").await;
    // ... seeks back to the start of the window: an earlier moment...
    browser
        .eval(
            "(() => { const r = document.querySelector('.rewind'); r.value = '0'; \
             r.dispatchEvent(new Event('input')); return true; })()",
        )
        .await;
    let rewound = browser
        .until(
            "an earlier program date after the seek",
            &format!(
                "Date.parse({clock}.dataset.programDate) < Date.parse({before}) - 3000 && {clock}.dataset.programDate"
            ),
        )
        .await;
    let at = browser.eval(&format!("{video}.currentTime")).await;
    browser
        .until(
            "the replay advancing after the seek",
            &format!("{video}.currentTime > {at} + 0.5"),
        )
        .await;
    // ... and goes back to live.
    browser.click_button("", "Back to live").await;
    browser
        .until(
            "back near the live edge",
            &format!("Date.parse({clock}.dataset.programDate) > Date.parse({rewound}) + 3000"),
        )
        .await;

    // "Clip the last 5 seconds": a share link to a playable MP4.
    browser.fill("input[name=clip_seconds]", "5").await;
    browser.click(".clip button.primary").await;
    let link = browser.find("[data-testid=share-link]").await;
    let href = link.attr("href").await.unwrap().expect("a link");
    assert!(
        href.contains("/v1/clips/") && href.contains("token="),
        "{href}"
    );
    let clip = reqwest::get(&href).await.unwrap();
    assert_eq!(clip.status(), 200);
    let bytes = clip.bytes().await.unwrap();
    probe_av(&bytes, "clip.mp4").assert_audio_and_video("shared clip", 5.0, 1.0);
    browser.screenshot("clip").await;

    // Processing changed on the live stream: motion clips off, same session.
    let stats = |s: pb::Stream| s.ingest_stats.expect("ingest stats");
    let session = stats(get_stream(&server, &acme.api_key, "cam").await.unwrap()).session_id;
    browser
        .click(".stream-page input[name='processing.motion_clip.enabled']")
        .await;
    browser
        .click(".stream-page form[novalidate] .actions button.primary")
        .await;
    browser
        .until(
            "the change applied",
            "document.querySelector('p.status').textContent.includes('live stream')",
        )
        .await;
    let now = get_stream(&server, &acme.api_key, "cam").await.unwrap();
    assert_eq!(now.state(), StreamState::Live);
    let motion = now.processing.unwrap().motion_clip;
    assert!(!motion.is_some_and(|m| m.enabled), "{motion:?}");
    assert_eq!(stats(now).session_id, session, "no re-ingest");

    // After the session: its recordings (10 s files) play one by one, and
    // as one session in hls.js, across the files' boundaries.
    assert!(within(60, "ffmpeg", wait_child(ffmpeg)).await.success());
    watch.until_state(StreamState::Ended, 20).await;
    browser.client.refresh().await.unwrap();
    let rows = "document.querySelectorAll('tr[data-recording]')";
    browser
        .until("the recordings listed", &format!("{rows}.length >= 4"))
        .await;
    let recordings = "//tr[@data-recording]";
    browser.click_button(recordings, "Play").await;
    let viewer = "document.querySelector('.viewer video')";
    browser
        .until(
            "a recording playing",
            &format!("{viewer} && {viewer}.currentTime > 0.5"),
        )
        .await;
    browser.click_button(recordings, "Play session").await;
    browser
        .until(
            "the session playing",
            &format!("{viewer} && !{viewer}.src.includes('.mp4') && {viewer}.currentTime > 0.5"),
        )
        .await;
    browser.eval(&format!("{viewer}.currentTime = 8.5")).await;
    browser
        .until(
            "the session playing on into its second file",
            &format!("{viewer}.currentTime > 11.5"),
        )
        .await;
    // Its bar shows the session storyboard's tiles under the pointer.
    let session_earliest = browser
        .until(
            "a session storyboard tile at the bar's start",
            &format!("{} && {shown}", hover(0.02)),
        )
        .await;
    browser
        .until(
            "a later session tile at the bar's end",
            &format!(
                "{} && {shown} && Date.parse({preview}.dataset.time) > Date.parse({session_earliest}) + 20000",
                hover(0.98)
            ),
        )
        .await;
    browser.screenshot("recordings").await;

    // On a phone-sized window the overview still reads.
    browser.client.set_window_size(390, 844).await.unwrap();
    browser.client.goto(&page(&server, "#/")).await.unwrap();
    browser.find("article[data-stream=cam]").await;
    browser.screenshot("streams-phone").await;
    browser.close().await;
}

/// The webhooks page: an internal address refused with the field's
/// error, an endpoint added with its secret shown once, a test event
/// whose failed attempt is listed, the endpoint disabled (with why) once
/// it has failed for the retry period, and enabled again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_endpoints_are_managed_in_the_dashboard() {
    let server = Server::builder()
        .flags(&[
            "--webhook-allow",
            "127.0.0.1",
            "--webhook-first-retry-seconds",
            "1",
            "--webhook-timeout-seconds",
            "2",
            "--webhook-retry-for-seconds",
            "10",
        ])
        .start();
    let org = server.create_org("Acme Auctions", true).await;
    let browser = Browser::start(1280, 900).await;
    sign_in(&browser, &server, &org.api_key).await;
    browser.click("[data-testid=webhooks-link]").await;

    browser
        .fill("input[name=url]", "http://10.0.0.1/hook")
        .await;
    browser.click_button("//form", "Add endpoint").await;
    browser
        .until(
            "the address refused",
            "document.querySelector('[data-testid=url-error]').textContent.includes('--webhook-allow')",
        )
        .await;

    // Nobody listens there: every attempt fails.
    let closed = free_port();
    browser
        .fill(
            "input[name=url]",
            &format!("http://127.0.0.1:{closed}/hook"),
        )
        .await;
    browser.click_button("//form", "Add endpoint").await;
    let secret = browser.text("[data-testid=webhook-secret] code").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    browser.click("[data-testid=send-test]").await;
    browser
        .until(
            "the failed attempt listed",
            "[...document.querySelectorAll('[data-testid=attempt-outcome]')].some(e => e.textContent === 'RETRYING')",
        )
        .await;
    browser
        .until(
            "the endpoint disabled",
            "document.querySelector('[data-testid=webhook-disabled]')",
        )
        .await;
    let banner = browser.text("article.endpoint .upgrade").await;
    assert!(banner.contains("every delivery failed"), "{banner}");
    browser.screenshot("webhooks-disabled").await;
    browser.click_button("//article", "Enable again").await;
    browser
        .until(
            "the endpoint enabled again",
            "!document.querySelector('[data-testid=webhook-disabled]') && document.querySelector('article.endpoint .badge.live')",
        )
        .await;
    browser.close().await;
}
