/**
 * An organization's home: its name, id, Enabled Packages and usage of
 * its quotas, then its
 * streams (paged) with their state (asked again every few seconds), a
 * live thumbnail ([`liveImage`]), and where to publish (SRT URL with a
 * copy button).
 */
import { api, organizations, organizationsService, signed } from "../api";
import { copyButton, formatBytes, h, replace } from "../dom";
import { liveImage } from "../live_image";
import { hasLiveProcessing, packageBadge, pager, stateBadge } from "./badges";
import type { Context, View } from "./context";

const PAGE_SIZE = 12;
/** How often a live stream's thumbnail is fetched again (ETag: mostly 304). */
const THUMBNAIL_REFRESH_MS = 3000;
/** How often the states of the streams shown are asked again. */
const STATE_REFRESH_MS = 5000;

export function overview(ctx: Context): View {
  if (ctx.identity.kind !== "organization") throw new Error("an organization's view");
  const org = ctx.identity.organization;
  const disposers: (() => void)[] = [];

  const orgCard = h(
    "section.card.org",
    {},
    h("h2", {}, org.name),
    h("dl", {}, h("dt", {}, "Organization id"), h("dd", {}, h("code", {}, org.id))),
    h(
      "div.packages",
      {},
      h("h3", {}, "Enabled Packages"),
      h("div.package-row", {}, h("span", {}, "Live processing"), packageBadge(org, ctx.config.operatorContact)),
    ),
    quotaPanel(ctx),
    revokeLinks(ctx),
  );

  const list = h("div.grid", { "data-testid": "streams" });
  const load = async (token: string) => {
    disposers.splice(0).forEach((d) => d());
    const page = await ctx.client.listStreams({ pageSize: PAGE_SIZE, pageToken: token });
    if (page.streams.length === 0 && !token) {
      replace(list, h("p.empty", {}, "No streams yet. Create one to get an SRT URL to publish to."));
      return "";
    }
    replace(list, ...page.streams.map((s) => streamCard(ctx, s, disposers)));
    // States change as publishers come and go: the page's are asked again.
    const timer = window.setInterval(async () => {
      const again = await ctx.client.listStreams({ pageSize: PAGE_SIZE, pageToken: token }).catch(() => null);
      for (const s of again?.streams ?? []) {
        const badge = list.querySelector(`article[data-stream="${CSS.escape(s.id)}"] .badge`);
        badge?.replaceWith(stateBadge(s.state));
      }
    }, STATE_REFRESH_MS);
    disposers.push(() => clearInterval(timer));
    return page.nextPageToken;
  };

  const element = h(
    "div.overview",
    {},
    orgCard,
    h(
      "section",
      {},
      h(
        "div.section-head",
        {},
        h("h2", {}, "Streams"),
        h("div.actions", {}, h("a.button", { href: "#/webhooks", "data-testid": "webhooks-link" }, "Webhooks"), h("a.button.primary", { href: "#/new" }, "New stream")),
      ),
      list,
      pager(load),
    ),
  );
  return { element, dispose: () => disposers.forEach((d) => d()) };
}

/** Revokes every link the organization signed until now (thumbnails,
 * players, share links): they are refused from then on. */
function revokeLinks(ctx: Context): HTMLElement {
  const done = h("small.muted", { role: "status" });
  const button = h("button", { type: "button", "data-testid": "revoke-signed-urls" }, "Revoke shared links");
  button.addEventListener("click", async () => {
    if (!confirm("Every link shared until now (players, thumbnails, clips) stops working.")) return;
    button.disabled = true;
    try {
      await organizationsService(location.origin, ctx.identity.key).revokeSignedUrls({});
      done.textContent = " Links signed before now are refused.";
    } finally {
      button.disabled = false;
    }
  });
  return h("div.actions", {}, button, done);
}

/** The organization's quotas and what it uses of each (GetUsage). */
function quotaPanel(ctx: Context): HTMLElement {
  const table = h("table.quotas", { "data-testid": "quotas" });
  const panel = h("div.usage", {}, h("h3", {}, "Usage and quotas"), table);
  const count = (n: bigint) => String(n);
  const bytes = (n: bigint) => formatBytes(Number(n));
  void organizationsService(location.origin, ctx.identity.key)
    .getUsage({})
    .then(({ quotas, usage }) => {
      const rows: [string, keyof organizations.Usage & keyof organizations.Quotas, (n: bigint) => string][] = [
        ["Streams", "streams", count],
        ["Live sessions", "liveSessions", count],
        ["Stored (recordings, clips)", "storedBytes", bytes],
        ["Replay memory", "replayMemoryBytes", bytes],
      ];
      replace(
        table,
        ...rows.map(([label, field, show]) => {
          const used = (usage?.[field] as bigint | undefined) ?? 0n;
          const limit = (quotas?.[field] as bigint | undefined) ?? 0n;
          const full = limit > 0n && used >= limit;
          return h(
            full ? "tr.full" : "tr",
            { "data-quota": field },
            h("th", {}, label),
            h("td", {}, show(used)),
            h("td.muted", {}, limit > 0n ? `of ${show(limit)}` : "no limit"),
          );
        }),
      );
    })
    .catch(() => replace(table, h("tr", {}, h("td.muted", {}, "usage unavailable"))));
  return panel;
}

function streamCard(ctx: Context, stream: api.Stream, disposers: (() => void)[]): HTMLElement {
  const thumbnailOn = stream.processing?.thumbnail?.enabled && hasLiveProcessing(orgOf(ctx));
  const picture = h("div.thumb-frame", {}, h("div.thumb.none", {}, thumbnailOn ? "" : "no thumbnail"));
  if (thumbnailOn) {
    void signed(ctx.client, `/v1/streams/${stream.id}/thumbnail.jpg`).then((url) => {
      const image = liveImage(url, stream.name || stream.id, THUMBNAIL_REFRESH_MS);
      disposers.push(image.dispose);
      replace(picture, image.element);
    });
  }
  const srt = stream.ingest?.srtUrl ?? "";
  return h(
    "article.card.stream",
    { "data-stream": stream.id },
    h("a.thumb-link", { href: `#/streams/${encodeURIComponent(stream.id)}` }, picture),
    h(
      "div.stream-body",
      {},
      h("div.stream-title", {}, h("a", { href: `#/streams/${encodeURIComponent(stream.id)}` }, stream.name || stream.id), stateBadge(stream.state)),
      h("small.muted", {}, stream.id),
      srt
        ? h("div.ingest", {}, h("code.url", { title: srt }, srt), copyButton(srt))
        : h("small.muted", {}, stream.sourceUri ? `pulled from ${stream.sourceUri}` : ""),
    ),
  );
}

function orgOf(ctx: Context) {
  if (ctx.identity.kind !== "organization") throw new Error("an organization's view");
  return ctx.identity.organization;
}
