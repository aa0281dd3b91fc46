/**
 * An image of a URL that changes (a stream's latest thumbnail): it
 * lazy-loads like any `<img loading="lazy">`, then, while on screen, asks
 * again every few seconds as a conditional request (`ETag`), so an
 * unchanged thumbnail costs a 304 and a new one shows as soon as it is
 * fetched.
 */
import { h } from "./dom";

export interface LiveImage {
  element: HTMLImageElement;
  dispose(): void;
}

export function liveImage(url: string, alt: string, refreshMs: number): LiveImage {
  const element = h("img.thumb", { alt, loading: "lazy", width: 320, height: 180, src: url });
  let visible = false;
  let shownTag: string | null = null;
  let objectUrl: string | null = null;
  element.addEventListener("error", () => element.classList.add("missing"));
  element.addEventListener("load", () => element.classList.remove("missing"));
  const observer = new IntersectionObserver((entries) => {
    visible = entries.some((e) => e.isIntersecting);
  });
  observer.observe(element);
  const refresh = async () => {
    if (!visible) return;
    try {
      const response = await fetch(url, { cache: "no-cache" });
      const tag = response.headers.get("etag");
      if (!response.ok || tag === shownTag) return;
      const blob = await response.blob();
      const previous = objectUrl;
      objectUrl = URL.createObjectURL(blob);
      element.src = objectUrl;
      element.dataset.etag = tag ?? "";
      shownTag = tag;
      if (previous) URL.revokeObjectURL(previous);
    } catch {
      // Offline for a moment: the next tick tries again.
    }
  };
  const timer = window.setInterval(refresh, refreshMs);
  return {
    element,
    dispose() {
      clearInterval(timer);
      observer.disconnect();
      if (objectUrl) URL.revokeObjectURL(objectUrl);
    },
  };
}
