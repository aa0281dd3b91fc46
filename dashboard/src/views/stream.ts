/**
 * One stream: its state events as they happen, the latest thumbnail and
 * motion clip, the replay player (rewind and back to live), "Clip the
 * last N seconds" with a share link, the recordings (play, download, a
 * whole session as one playlist), and its live processing, changed on
 * the live stream without re-ingest.
 */
import {
  api,
  describe,
  fieldViolations,
  processing,
  signed,
  timestampDate,
  type LiveProcessingClient,
} from "../api";
import { copyButton, formatBytes, formatSeconds, h, replace } from "../dom";
import { hlsPlayer, type Player } from "../player";
import { processingForm } from "../processing_form";
import { liveImage } from "../live_image";
import { hasLiveProcessing, pager, stateBadge } from "./badges";
import type { Context, View } from "./context";

const MAX_EVENTS = 50;
const RECORDINGS_PAGE = 10;
const MOTION_REFRESH_MS = 5000;
const IMAGE_TYPES: Partial<Record<processing.ImageFormat, string>> = {
  [processing.ImageFormat.PNG]: "image/png",
  [processing.ImageFormat.WEBP]: "image/webp",
};
/** Share links work for a week (the longest a signed URL may). */
const SHARE_TTL_SECONDS = 7 * 24 * 3600;

export function streamPage(ctx: Context, streamId: string): View {
  if (ctx.identity.kind !== "organization") throw new Error("an organization's view");
  const org = ctx.identity.organization;
  const abort = new AbortController();
  const disposers: (() => void)[] = [() => abort.abort()];
  const client = ctx.client;

  const title = h("h2", {}, streamId);
  const badge = h("span", {}, stateBadge(api.StreamState.IDLE));
  const ingest = h("div.ingest");
  const thumbnail = h("img.thumb.large", { alt: "latest thumbnail", "data-testid": "latest-thumbnail" });
  const thumbnailInfo = h("small.muted");
  const motion = h("div.motion", {}, h("small.muted", {}, "no motion clip yet"));
  const events = h("ol.events", { "data-testid": "events", reversed: true });
  const replay = h("div.replay", {}, h("p.muted", {}, "Replay plays while the stream is live."));
  const clip = h("div.clip");
  const recordings = h("div.recordings");
  const processingPart = h("div");
  let player: Player | null = null;
  let stream: api.Stream | null = null;
  disposers.push(() => player?.destroy());

  const element = h(
    "div.stream-page",
    {},
    h("div.section-head", {}, h("div", {}, h("a.muted", { href: "#/" }, "← Streams"), title), badge),
    ingest,
    h(
      "div.columns",
      {},
      h(
        "section.card",
        {},
        h("h3", {}, "Latest thumbnail"),
        thumbnail,
        thumbnailInfo,
        h("h3", {}, "Latest motion clip"),
        motion,
      ),
      h("section.card", {}, h("h3", {}, "Events"), events),
    ),
    h("section.card", {}, h("h3", {}, "Replay"), replay, clip),
    h("section.card", {}, h("h3", {}, "Recordings"), recordings),
    h("section.card", {}, h("h3", {}, "Live processing"), processingPart),
  );

  const showState = (state: api.StreamState) => {
    replace(badge, stateBadge(state));
    const replayOn = stream?.processing?.replay?.enabled;
    if (state === api.StreamState.LIVE && replayOn && !player) void startReplay();
  };

  const startReplay = async () => {
    const url = await signed(client, `/v1/streams/${streamId}/ll.m3u8`);
    // Hover previews are a nicety: the player plays without them.
    const storyboard = await signed(client, `/v1/streams/${streamId}/storyboard.vtt`).catch(() => undefined);
    if (abort.signal.aborted || player) return;
    player = hlsPlayer(url, true, storyboard);
    replace(replay, player.element);
  };

  // Where to publish, and a new stream key (the old one and a publisher
  // live with it stop at once).
  const showIngest = (s: api.Stream) => {
    const details = ingestDetails(s.ingest);
    if (!details || s.sourceUri) return replace(ingest, details);
    const rotate = h("button", { type: "button", "data-testid": "rotate-stream-key" }, "New stream key");
    rotate.addEventListener("click", async () => {
      if (!confirm("The current stream key stops at once, and a publisher live with it is disconnected.")) return;
      rotate.disabled = true;
      try {
        stream = await client.rotateStreamKey({ streamId });
        showIngest(stream);
      } finally {
        rotate.disabled = false;
      }
    });
    replace(ingest, details, h("div.actions", {}, rotate));
  };

  const load = async () => {
    stream = await client.getStream({ streamId }, { signal: abort.signal });
    title.textContent = stream.name || stream.id;
    showIngest(stream);
    renderProcessing(stream);
    renderClip(stream);
    showState(stream.state);
    void watch();
    void thumbnails();
    void motionClips(stream);
  };

  const watch = async () => {
    try {
      for await (const event of client.watchStream({ streamId }, { signal: abort.signal })) {
        const time = event.time ? timestampDate(event.time).toLocaleTimeString() : "";
        const kind = api.StreamEvent_Kind[event.kind] ?? "";
        const state = api.StreamState[event.state] ?? "";
        events.prepend(
          h(
            "li",
            { "data-kind": kind, "data-state": state },
            h("time", {}, time),
            ` ${kind.toLowerCase().replace("_", " ")}: ${state.toLowerCase()}`,
            event.message ? h("small.muted", {}, ` ${event.message}`) : null,
          ),
        );
        while (events.children.length > MAX_EVENTS) events.lastElementChild?.remove();
        if (event.processing && stream) stream.processing = event.processing;
        showState(event.state);
      }
    } catch (error) {
      if (!abort.signal.aborted) events.prepend(h("li.error", {}, `event stream ended: ${describe(error)}`));
    }
  };

  const thumbnails = async () => {
    if (!stream?.processing?.thumbnail?.enabled || !hasLiveProcessing(org)) {
      thumbnailInfo.textContent = "Thumbnails are off for this stream.";
      return;
    }
    let shown: string | null = null;
    try {
      const request = { streamId, sendLatest: true };
      for await (const t of client.subscribeThumbnails(request, { signal: abort.signal })) {
        const type = IMAGE_TYPES[t.format] ?? "image/jpeg";
        const url = URL.createObjectURL(new Blob([t.data as Uint8Array<ArrayBuffer>], { type }));
        thumbnail.src = url;
        thumbnail.dataset.sequence = String(t.sequence);
        if (shown) URL.revokeObjectURL(shown);
        shown = url;
        const at = t.captureTime ? timestampDate(t.captureTime).toLocaleTimeString() : "";
        thumbnailInfo.textContent = `#${t.sequence} · ${t.width}×${t.height} · ${at}`;
      }
    } catch (error) {
      if (!abort.signal.aborted) thumbnailInfo.textContent = describe(error);
    }
  };

  const motionClips = async (s: api.Stream) => {
    if (!s.processing?.motionClip?.enabled || !hasLiveProcessing(org)) return;
    const gif = s.processing.motionClip.format === processing.ClipFormat.GIF;
    const url = await signed(client, `/v1/streams/${streamId}/motion.${gif ? "gif" : "mp4"}`);
    if (gif) {
      const image = liveImage(url, "latest motion clip", MOTION_REFRESH_MS);
      disposers.push(image.dispose);
      replace(motion, image.element);
      return;
    }
    let tag: string | null = null;
    const refresh = async () => {
      const response = await fetch(url, { cache: "no-cache" }).catch(() => null);
      if (!response?.ok || response.headers.get("etag") === tag) return;
      tag = response.headers.get("etag");
      const src = URL.createObjectURL(await response.blob());
      const old = motion.querySelector("video")?.src;
      replace(motion, h("video", { src, muted: true, autoplay: true, loop: true, playsInline: true }));
      if (old) URL.revokeObjectURL(old);
    };
    void refresh();
    const timer = window.setInterval(refresh, MOTION_REFRESH_MS);
    disposers.push(() => clearInterval(timer));
  };

  const renderClip = (s: api.Stream) => {
    if (!s.processing?.replay?.enabled) {
      replace(clip);
      return;
    }
    const seconds = h("input", { type: "number", min: 1, max: 600, value: "30", name: "clip_seconds", "aria-label": "seconds" });
    const button = h("button.primary", { type: "submit" }, "Clip the last ", "N", " seconds");
    const result = h("div.share", { "data-testid": "clip-result" });
    const sync = () => (button.childNodes[1].textContent = seconds.value || "N");
    seconds.addEventListener("input", sync);
    sync();
    const form = h("form.inline", {}, h("label.row", {}, "Last ", seconds, " s"), button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      button.disabled = true;
      replace(result, h("small.muted", {}, "Making the clip…"));
      try {
        const n = Number(seconds.value);
        const made = await client.createReplayClip({
          streamId,
          start: { case: "secondsBeforeLive", value: n },
          durationSeconds: n,
          title: `${stream?.name || streamId}, last ${n} s`,
        });
        const { url } = await client.signUrl({ path: `/v1/clips/${made.id}.mp4`, ttlSeconds: SHARE_TTL_SECONDS });
        const duration = made.duration ? Number(made.duration.seconds) + made.duration.nanos / 1e9 : n;
        replace(
          result,
          h("a", { href: url, target: "_blank", rel: "noopener", "data-testid": "share-link" }, url),
          " ",
          copyButton(url, "Copy link"),
          h("small.muted", {}, ` ${formatSeconds(duration)} · ${formatBytes(Number(made.sizeBytes))} · link valid 7 days`),
        );
        void renderRecordings();
      } catch (error) {
        replace(result, h("span.error", { role: "alert" }, describe(error)));
      } finally {
        button.disabled = false;
      }
    });
    replace(clip, h("h4", {}, "Share a moment"), form, result);
  };

  const renderRecordings = async () => {
    const list = h("table.list", {}, h("thead", {}, h("tr", {}, h("th", {}, "Started"), h("th", {}, "Length"), h("th", {}, "Size"), h("th", {}, "State"), h("th", {}, ""))));
    const rows = h("tbody");
    list.append(rows);
    const viewer = h("div.viewer");
    const fill = async (token: string) => {
      const page = await client.listRecordings({ streamId, pageSize: RECORDINGS_PAGE, pageToken: token });
      if (!page.recordings.length && !token) {
        replace(rows, h("tr", {}, h("td", { colSpan: 5 }, h("small.muted", {}, "No recordings yet."))));
        return "";
      }
      replace(rows, ...page.recordings.map((r) => recordingRow(client, r, viewer)));
      return page.nextPageToken;
    };
    replace(recordings, list, pager(fill), viewer);
  };

  const renderProcessing = (s: api.Stream) => {
    if (!hasLiveProcessing(org)) {
      replace(processingPart, h("p", {}, h("strong", {}, "Upgrade needed"), ` ${ctx.config.operatorContact}`));
      return;
    }
    const form = processingForm(s.processing);
    const status = h("p.status", { role: "status" });
    const apply = h("button.primary", { type: "submit" }, "Apply");
    const page = h("form", { novalidate: true }, form.element, status, h("div.actions", {}, apply));
    page.addEventListener("submit", async (event) => {
      event.preventDefault();
      status.textContent = "";
      const options = form.read();
      if (!options) return;
      apply.disabled = true;
      try {
        stream = await client.updateProcessing({ streamId, processing: options });
        status.textContent = stream.state === api.StreamState.LIVE ? "Applied to the live stream." : "Saved.";
        renderClip(stream);
      } catch (error) {
        if (!form.showViolations(fieldViolations(error))) status.textContent = describe(error);
      } finally {
        apply.disabled = false;
      }
    });
    replace(processingPart, page);
  };

  load().catch((error) => {
    if (!abort.signal.aborted) replace(element, h("p.error", { role: "alert" }, describe(error)));
  });
  void renderRecordings();
  return { element, dispose: () => disposers.forEach((d) => d()) };
}

function recordingRow(client: LiveProcessingClient, r: api.Recording, viewer: HTMLElement): HTMLElement {
  const started = r.startTime ? timestampDate(r.startTime).toLocaleString() : "";
  const seconds = r.duration ? Number(r.duration.seconds) + r.duration.nanos / 1e9 : 0;
  const state = (api.RecordingState[r.state] ?? "").toLowerCase();
  const play = h("button.small", { type: "button" }, "Play");
  const download = h("button.small", { type: "button" }, "Download");
  const session = h("button.small", { type: "button", title: "Every file of this publishing session, as one" }, "Play session");
  play.addEventListener("click", async () => {
    const url = await signed(client, `/v1/recordings/${r.id}.mp4`);
    replace(viewer, h("video", { src: url, controls: true, autoplay: true, muted: true }));
  });
  download.addEventListener("click", async () => {
    const url = await signed(client, `/v1/recordings/${r.id}.mp4`);
    const link = h("a", { href: url, download: `${r.id}.mp4` });
    document.body.append(link);
    link.click();
    link.remove();
  });
  session.addEventListener("click", async () => {
    const base = `/v1/streams/${r.streamId}/sessions/${r.sessionId}`;
    const url = await signed(client, `${base}/recordings.m3u8`);
    const storyboard = await signed(client, `${base}/storyboard.vtt`).catch(() => undefined);
    const player = hlsPlayer(url, false, storyboard);
    replace(viewer, player.element);
  });
  return h(
    "tr",
    { "data-recording": r.id },
    h("td", {}, started),
    h("td", {}, formatSeconds(seconds)),
    h("td", {}, formatBytes(Number(r.sizeBytes))),
    h("td", {}, state),
    h("td.actions", {}, play, download, r.sessionId ? session : null),
  );
}

/** Where an encoder publishes: the SRT URL (and its encryption, when the
 * stream requires it), RTMP and RTMPS as one URL
 * each, and as OBS asks for it (Server and Stream Key; RTMPS when the
 * server offers it, as it is encrypted), each with a copy button. */
function ingestDetails(info: api.IngestInfo | undefined): HTMLElement | null {
  if (!info?.srtUrl) return null;
  const obsServer = info.rtmpsServer || info.rtmpServer;
  const row = (label: string, value: string, secret = false) =>
    h(
      "div.ingest-row",
      { "data-ingest": label },
      h("span.muted", {}, `${label} `),
      h(secret ? "code.url.secret" : "code.url", { title: secret ? "" : value }, value),
      " ",
      copyButton(value),
    );
  return h(
    "div.ingest-details",
    {},
    row("SRT", info.srtUrl),
    info.srtEncryption ? row("SRT passphrase", info.srtEncryption.passphrase, true) : null,
    info.srtEncryption
      ? row("SRT key length", info.srtEncryption.keyLength ? `AES-${info.srtEncryption.keyLength * 8}` : "the encoder's choice")
      : null,
    info.rtmpUrl ? row("RTMP", info.rtmpUrl) : null,
    info.rtmpsUrl ? row("RTMPS", info.rtmpsUrl) : null,
    obsServer ? row("OBS Server", obsServer) : null,
    obsServer ? row("OBS Stream Key", info.rtmpStreamKey, true) : null,
  );
}
