/**
 * The replay player: hls.js (or the browser's own HLS, in Safari) on a
 * stream's `replay.m3u8`, with a rewind bar over the replay window, the
 * wall-clock time of the frame shown (from `EXT-X-PROGRAM-DATE-TIME`),
 * and "Back to live". Also plays a session's recordings (a VOD playlist).
 */
import Hls from "hls.js/light";

import { h } from "./dom";

export interface Player {
  element: HTMLElement;
  video: HTMLVideoElement;
  destroy(): void;
}

export function hlsPlayer(url: string, live: boolean): Player {
  const video = h("video", { controls: true, muted: true, autoplay: true, playsInline: true });
  const rewind = h("input.rewind", { type: "range", min: 0, max: 1000, value: 1000, step: 1, "aria-label": "Position in the replay window" });
  const clock = h("output.clock", { "data-testid": "program-date" });
  const toLive = h("button.small", { type: "button" }, "Back to live");
  let hls: Hls | null = null;

  if (Hls.isSupported()) {
    hls = new Hls({
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
      clock.value = date.toLocaleTimeString();
      clock.dataset.programDate = date.toISOString();
    }
  };
  video.addEventListener("timeupdate", update);
  rewind.addEventListener("input", () => {
    const w = window();
    if (w) video.currentTime = w.start + (Number(rewind.value) / 1000) * (w.end - w.start);
  });
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
    h("div.player-bar", {}, live ? rewind : null, clock, live ? toLive : null),
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
