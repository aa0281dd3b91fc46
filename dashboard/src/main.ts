/**
 * The dashboard's entry: signs in (form or `#key=`), then shows the view
 * the address names: `#/` an organization's overview, `#/new` the stream
 * creation steps, `#/streams/<id>` a stream, `#/webhooks` its webhook
 * endpoints; with the admin key, the
 * operator view. Views are torn down (streams aborted, timers stopped)
 * when the address changes.
 */
import { dashboardConfig, describe, liveProcessing, type DashboardConfig } from "./api";
import { h, replace } from "./dom";
import { identify, signOut, storedKey, takeKeyFromFragment, type Identity } from "./session";
import type { Context, View } from "./views/context";
import { createStream } from "./views/create";
import { operator } from "./views/operator";
import { overview } from "./views/overview";
import { signIn } from "./views/signin";
import { streamPage } from "./views/stream";
import { webhooksPage } from "./views/webhooks";

const app = document.getElementById("app")!;
const who = document.getElementById("who")!;
let current: View | null = null;

function show(view: View): void {
  current?.dispose?.();
  current = view;
  replace(app, view.element);
}

function route(ctx: Context): void {
  const hash = location.hash || "#/";
  if (ctx.identity.kind === "admin") {
    show(operator(ctx));
    return;
  }
  const stream = /^#\/streams\/(.+)$/.exec(hash);
  if (stream) show(streamPage(ctx, decodeURIComponent(stream[1])));
  else if (hash === "#/new") show(createStream(ctx));
  else if (hash === "#/webhooks") show(webhooksPage(ctx));
  else show(overview(ctx));
}

function start(identity: Identity, config: DashboardConfig): void {
  const ctx: Context = { identity, config, client: liveProcessing(location.origin, identity.key) };
  const name = identity.kind === "admin" ? "Operator" : identity.organization.name;
  replace(who, h("span", { "data-testid": "signed-in-as" }, name), h("button.small", { type: "button", onclick: signOut }, "Sign out"));
  window.addEventListener("hashchange", () => route(ctx));
  route(ctx);
}

async function main(): Promise<void> {
  takeKeyFromFragment();
  const config = await dashboardConfig();
  const key = storedKey();
  const ask = (problem?: string) => show({ element: signIn((identity) => start(identity, config), problem) });
  if (!key) return ask();
  try {
    start(await identify(key), config);
  } catch (error) {
    ask(describe(error));
  }
}

void main();
