/** Small pieces shared by views: the state badge, the package badge, the pager. */
import { api, organizations } from "../api";
import { h } from "../dom";

export function stateBadge(state: api.StreamState): HTMLElement {
  const name = api.StreamState[state] ?? "UNKNOWN";
  const label = name.replace("STREAM_STATE_", "").toLowerCase();
  return h("span.badge", { "data-state": label }, label);
}

/** "Enabled", or "Upgrade needed" with who to ask. */
export function packageBadge(org: organizations.Organization, contact: string): HTMLElement {
  const enabled = org.packages?.liveProcessing === organizations.PackageState.ENABLED;
  return enabled
    ? h("span.package.enabled", { "data-package": "live_processing" }, "Enabled")
    : h(
        "span.package.upgrade",
        { "data-package": "live_processing" },
        h("strong", {}, "Upgrade needed"),
        contact ? h("small", {}, ` ${contact}`) : null,
      );
}

export function hasLiveProcessing(org: organizations.Organization): boolean {
  return org.packages?.liveProcessing === organizations.PackageState.ENABLED;
}

/**
 * Pages of a listing by page token: `load(token)` fills a page and returns
 * the next token; the pager shows previous/next.
 */
export function pager(load: (token: string) => Promise<string>): HTMLElement {
  const tokens = [""];
  let index = 0;
  const previous = h("button.small", { type: "button", disabled: true }, "← Previous");
  const next = h("button.small", { type: "button", disabled: true }, "Next →");
  const show = async () => {
    const nextToken = await load(tokens[index]);
    tokens[index + 1] = nextToken;
    previous.disabled = index === 0;
    next.disabled = !nextToken;
  };
  previous.addEventListener("click", () => {
    index--;
    void show();
  });
  next.addEventListener("click", () => {
    index++;
    void show();
  });
  void show();
  return h("nav.pager", {}, previous, next);
}
