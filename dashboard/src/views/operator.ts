/**
 * The operator's view (admin key): every organization, paged, with its
 * live processing package switched on or off in place, and a form that
 * creates an organization and shows its API key once.
 */
import { describe, organizations, organizationsService, timestampDate } from "../api";
import { copyButton, h, replace } from "../dom";
import { pager } from "./badges";
import type { Context, View } from "./context";

const PAGE_SIZE = 20;

export function operator(ctx: Context): View {
  const service = organizationsService(location.origin, ctx.identity.key);
  const rows = h("tbody");
  const table = h(
    "table.list",
    { "data-testid": "organizations" },
    h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Id"), h("th", {}, "Created"), h("th", {}, "Live processing"))),
    rows,
  );
  const load = async (token: string) => {
    const page = await service.listOrganizations({ pageSize: PAGE_SIZE, pageToken: token });
    replace(rows, ...page.organizations.map((org) => row(service, org)));
    return page.nextPageToken;
  };

  const name = h("input", { name: "organization_name", required: true, maxLength: 200 });
  const live = h("input", { type: "checkbox", name: "organization_live_processing" });
  const created = h("div.created", { "data-testid": "created-organization" });
  const form = h(
    "form.inline",
    {},
    h("label", {}, h("span", {}, "Name"), name),
    h("label.check", {}, live, " live processing"),
    h("button.primary", { type: "submit" }, "Create organization"),
  );
  let listPager = pager(load);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const org = await service.createOrganization({ name: name.value.trim(), liveProcessing: live.checked });
      replace(
        created,
        h("p", {}, h("strong", {}, org.name), " created. Its API key, shown this once:"),
        h("div.key", {}, h("code", { "data-testid": "new-api-key" }, org.apiKey), copyButton(org.apiKey)),
      );
      name.value = "";
      const fresh = pager(load);
      listPager.replaceWith(fresh);
      listPager = fresh;
    } catch (error) {
      replace(created, h("p.error", { role: "alert" }, describe(error)));
    }
  });

  const element = h(
    "div.operator",
    {},
    h("section.card", {}, h("h2", {}, "New organization"), form, created),
    h("section.card", {}, h("h2", {}, "Organizations"), table, listPager),
  );
  return { element };
}

function row(service: ReturnType<typeof organizationsService>, org: organizations.Organization): HTMLElement {
  const toggle = h("input", {
    type: "checkbox",
    checked: org.packages?.liveProcessing === organizations.PackageState.ENABLED,
    "aria-label": `live processing for ${org.name}`,
  });
  const status = h("small.muted");
  toggle.addEventListener("change", async () => {
    toggle.disabled = true;
    try {
      const updated = await service.setPackages({ organizationId: org.id, liveProcessing: toggle.checked });
      toggle.checked = updated.packages?.liveProcessing === organizations.PackageState.ENABLED;
      status.textContent = toggle.checked ? " enabled" : " off";
    } catch (error) {
      toggle.checked = !toggle.checked;
      status.textContent = ` ${describe(error)}`;
    } finally {
      toggle.disabled = false;
    }
  });
  return h(
    "tr",
    { "data-organization": org.id },
    h("td", {}, org.name),
    h("td", {}, h("code", {}, org.id)),
    h("td", {}, org.createTime ? timestampDate(org.createTime).toLocaleDateString() : ""),
    h("td", {}, h("label.switch", {}, toggle, status)),
  );
}
