/**
 * The replay player: hls.js (or the browser's own HLS, in Safari) on a
 * stream's low-latency `ll.m3u8` (parts near the live edge), with a
 * rewind bar over the replay window, the wall-clock time of the frame
 * shown (from `EXT-X-PROGRAM-DATE-TIME`) and how far behind live it is,
 * and "Back to live"; with a storyboard, the rewind bar shows the
 * picture under the pointer. Also plays a session's recordings (a VOD
 * playlist), with a position bar and its storyboard when given one.
 */
import Hls from "hls.js/light";

import { h } from "./dom";
import { parseStoryboard, type Storyboard } from "./storyboard";

/** How often the storyboard is asked for again while it is used. */
const STORYBOARD_REFRESH_MS = 5000;

export interface Player {
  element: HTMLElement;
  video: HTMLVideoElement;
  destroy(): void;
}

export function hlsPlayer(url: string, live: boolean, storyboardUrl?: string): Player {
  const video = h("video", { controls: true, muted: true, autoplay: true, playsInline: true });
  const rewind = h("input.rewind", { type: "range", min: 0, max: 1000, value: 1000, step: 1, "aria-label": "Position in the replay window" });
  const clock = h("output.clock", { "data-testid": "program-date" });
  const toLive = h("button.small", { type: "button" }, "Back to live");
  let hls: Hls | null = null;

  if (Hls.isSupported()) {
    hls = new Hls({
      lowLatencyMode: true,
      liveDurationInfinity: true,
      backBufferLength: 90,
      // A session that has just begun answers 503 until its first GOP is
      // complete: keep asking, once a second, for half a minute.
      manifestLoadPolicy: {
        default: {
          maxTimeToFirstByteMs: 10_000,
          maxLoadTimeMs: 20_000,
          timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
          errorRetry: { maxNumRetry: 30, retryDelayMs: 1000, maxRetryDelayMs: 1000, backoff: "linear" },
        },
      },
    });
    hls.loadSource(url);
    hls.attachMedia(video);
  } else {
    video.src = url;
  }

  const window = () => {
    const ranges = video.seekable;
    return ranges.length ? { start: ranges.start(0), end: ranges.end(ranges.length - 1) } : null;
  };
  const playingDate = (): Date | null => {
    if (hls?.playingDate) return hls.playingDate;
    const native = (video as HTMLVideoElement & { getStartDate?: () => Date }).getStartDate?.();
    return native && !Number.isNaN(native.getTime()) ? new Date(native.getTime() + video.currentTime * 1000) : null;
  };
  const update = () => {
    const w = window();
    if (w && w.end > w.start && document.activeElement !== rewind) {
      rewind.value = String(Math.round(((video.currentTime - w.start) / (w.end - w.start)) * 1000));
    }
    const date = playingDate();
    if (date) {
      // Program dates are arrival times at the server: how far the frame
      // shown is behind the media reaching it.
      const behind = Math.max(0, Date.now() - date.getTime());
      clock.value = live ? `${date.toLocaleTimeString()} · ${(behind / 1000).toFixed(1)} s behind` : date.toLocaleTimeString();
      clock.dataset.programDate = date.toISOString();
      clock.dataset.behindMs = String(behind);
    }
  };
  video.addEventListener("timeupdate", update);
  rewind.addEventListener("input", () => {
    const w = window();
    if (w) video.currentTime = w.start + (Number(rewind.value) / 1000) * (w.end - w.start);
  });
  const preview = h("div.storyboard-preview", { "data-testid": "storyboard-preview", hidden: true });
  let storyboard: Storyboard | null = null;
  let storyboardAsked = 0;
  const loadStoryboard = async () => {
    if (!storyboardUrl || Date.now() - storyboardAsked < STORYBOARD_REFRESH_MS) return;
    storyboardAsked = Date.now();
    const response = await fetch(storyboardUrl, { cache: "no-cache" });
    if (response.ok) storyboard = parseStoryboard(await response.text(), storyboardUrl);
  };
  // The wall-clock time at a place of the bar: the window's position
  // there, from the date of the frame playing now.
  const showPreview = (event: PointerEvent) => {
    const w = window();
    const date = playingDate();
    const box = rewind.getBoundingClientRect();
    if (!w || (live && !date) || !storyboard || box.width === 0) return void (preview.hidden = true);
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    const position = w.start + fraction * (w.end - w.start);
    // Live, through the date of the frame playing; a session's playlist
    // is the storyboard's own timeline, from its origin.
    const time = live && date ? date.getTime() + (position - video.currentTime) * 1000 : storyboard.origin + position * 1000;
    const tile = storyboard.at(time);
    if (!tile) return void (preview.hidden = true);
    Object.assign(preview.style, {
      width: `${tile.w}px`,
      height: `${tile.h}px`,
      backgroundImage: `url("${tile.sheet}")`,
      backgroundPosition: `-${tile.x}px -${tile.y}px`,
      left: `${Math.min(Math.max(0, event.clientX - box.left - tile.w / 2), box.width - tile.w)}px`,
    });
    preview.dataset.time = new Date(tile.from).toISOString();
    preview.hidden = false;
  };
  if (storyboardUrl) {
    rewind.addEventListener("pointerenter", () => void loadStoryboard());
    rewind.addEventListener("pointermove", (event) => {
      void loadStoryboard();
      showPreview(event);
    });
    rewind.addEventListener("pointerleave", () => (preview.hidden = true));
  }
  toLive.addEventListener("click", () => {
    const w = window();
    const edge = hls?.liveSyncPosition ?? w?.end;
    if (edge !== undefined && edge !== null) video.currentTime = edge;
    void video.play();
  });

  const element = h(
    "div.player",
    {},
    video,
    h(
      "div.player-bar",
      {},
      live || storyboardUrl ? h("div.rewind-track", {}, rewind, preview) : null,
      clock,
      live ? toLive : null,
    ),
  );
  return {
    element,
    video,
    destroy() {
      hls?.destroy();
      video.removeAttribute("src");
      video.load();
    },
  };
}
