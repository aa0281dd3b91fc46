/**
 * `#/webhooks`: an organization's webhook endpoints. A form adds one (URL
 * and event types; its signing secret is shown once, with a copy button);
 * each endpoint shows its types, its state (a disabled endpoint says why,
 * in a banner, with a button to enable it again), the events waiting for
 * it, and its last delivery attempts; it can send a test event, rotate its
 * secret and be deleted. The list is read again every few seconds.
 */
import { describe, fieldViolations, timestampDate, webhooks, webhooksService } from "../api";
import { copyButton, h, replace } from "../dom";
import type { Context, View } from "./context";

/** Every event type, and whether it is taken when none is named. */
const EVENT_TYPES: [string, boolean][] = [
  ["stream.live", true],
  ["stream.ended", true],
  ["stream.error", true],
  ["stream.processing_changed", true],
  ["recording.ready", true],
  ["replay_clip.ready", true],
  ["motion_clip.created", true],
  ["thumbnail.created", false],
];
const REFRESH_MS = 4000;
const ATTEMPTS_SHOWN = 5;

export function webhooksPage(ctx: Context): View {
  const client = webhooksService(location.origin, ctx.identity.key);
  const list = h("div.endpoints", { "data-testid": "webhook-endpoints" });
  const secretBox = h("div.secret-box");

  const showSecret = (endpoint: webhooks.WebhookEndpoint, what: string) =>
    replace(
      secretBox,
      h(
        "div.notice",
        { "data-testid": "webhook-secret" },
        h("p", {}, `${what} Its signing secret is shown this once:`),
        h("div.ingest", {}, h("code.url", {}, endpoint.secret), copyButton(endpoint.secret)),
      ),
    );

  const reload = async () => {
    const { endpoints } = await client.listWebhookEndpoints({});
    if (endpoints.length === 0) {
      replace(list, h("p.empty", {}, "No endpoints yet."));
      return;
    }
    const cards = await Promise.all(endpoints.map((e) => endpointCard(e)));
    replace(list, ...cards);
  };

  const act = async (work: () => Promise<unknown>) => {
    try {
      await work();
    } catch (error) {
      window.alert(describe(error));
    }
    await reload();
  };

  const endpointCard = async (endpoint: webhooks.WebhookEndpoint): Promise<HTMLElement> => {
    const attempts = await client
      .listWebhookDeliveries({ endpointId: endpoint.id, pageSize: ATTEMPTS_SHOWN })
      .then((r) => r.deliveries)
      .catch(() => []);
    const state = endpoint.enabled
      ? h("span.badge.live", {}, "Enabled")
      : h("span.badge.error", { "data-testid": "webhook-disabled" }, "Disabled");
    const banner = endpoint.enabled
      ? null
      : h(
          "div.upgrade",
          {},
          h("p", {}, `Disabled: ${endpoint.disabledReason}`),
          h("button.small", { type: "button", onclick: () => act(() => client.updateWebhookEndpoint({ endpointId: endpoint.id, enabled: true })) }, "Enable again"),
        );
    return h(
      "article.card.endpoint",
      { "data-endpoint": endpoint.id },
      h("div.stream-title", {}, h("code.url", { title: endpoint.url }, endpoint.url), state),
      banner,
      h("small.muted", {}, endpoint.eventTypes.join(", ")),
      h("p", {}, `${endpoint.pendingDeliveries} waiting`),
      h(
        "table.attempts",
        {},
        ...attempts.map((a) =>
          h(
            "tr",
            {},
            h("td", {}, a.attemptTime ? timestampDate(a.attemptTime).toLocaleTimeString() : ""),
            h("td", {}, a.eventType),
            h("td", {}, a.responseStatus ? String(a.responseStatus) : "—"),
            h("td", { "data-testid": "attempt-outcome" }, webhooks.WebhookDeliveryOutcome[a.outcome] ?? ""),
            h("td.muted", {}, a.error),
          ),
        ),
      ),
      h(
        "div.actions",
        {},
        h("button.small", { type: "button", "data-testid": "send-test", onclick: () => act(() => client.sendTestWebhook({ endpointId: endpoint.id })) }, "Send test"),
        h(
          "button.small",
          {
            type: "button",
            onclick: () =>
              act(async () => showSecret(await client.rotateWebhookSecret({ endpointId: endpoint.id }), "Secret rotated: the old one signs beside it for 24 hours.")),
          },
          "Rotate secret",
        ),
        h(
          "button.small",
          {
            type: "button",
            onclick: () => {
              if (window.confirm(`Delete the endpoint ${endpoint.url}?`)) void act(() => client.deleteWebhookEndpoint({ endpointId: endpoint.id }));
            },
          },
          "Delete",
        ),
      ),
    );
  };

  const url = h("input", { type: "url", name: "url", placeholder: "https://hooks.example.com/liveproc", required: true });
  const urlError = h("small.error", { "data-testid": "url-error" });
  const boxes = EVENT_TYPES.map(([name, byDefault]) => {
    const box = h("input", { type: "checkbox", value: name, checked: byDefault });
    return { name, box, label: h("label.check", {}, box, ` ${name}`) };
  });
  const add = h("button.primary", { type: "submit" }, "Add endpoint");
  const form = h(
    "form.card",
    { novalidate: true },
    h("h3", {}, "New endpoint"),
    h("label", {}, "URL ", url),
    urlError,
    h("div.types", {}, ...boxes.map((b) => b.label)),
    h("div.actions", {}, add),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    urlError.textContent = "";
    add.disabled = true;
    try {
      const eventTypes = boxes.filter((b) => b.box.checked).map((b) => b.name);
      const endpoint = await client.createWebhookEndpoint({ url: url.value.trim(), eventTypes });
      url.value = "";
      showSecret(endpoint, "Endpoint added.");
      await reload();
    } catch (error) {
      const violation = fieldViolations(error)[0];
      urlError.textContent = violation ? `${violation.field} ${violation.description}` : describe(error);
    } finally {
      add.disabled = false;
    }
  });

  void reload();
  const timer = window.setInterval(() => void reload().catch(() => undefined), REFRESH_MS);
  const element = h(
    "div.webhooks",
    {},
    h("div.section-head", {}, h("h2", {}, "Webhooks"), h("a.button", { href: "#/" }, "Streams")),
    h("p.muted", {}, "Your servers are sent each event, signed as Standard Webhooks: check the webhook-signature header with the endpoint's secret."),
    secretBox,
    form,
    list,
  );
  return { element, dispose: () => clearInterval(timer) };
}
