/**
 * Creating a stream in steps: its name, id and SRT encryption, then live processing
 * (each feature with its setting and range). Without the package, the
 * second step says "Upgrade needed" instead of offering the features.
 * Errors from the server appear next to the field they name.
 */
import { create, describe, errorReason, fieldViolations, processing } from "../api";
import { h, replace } from "../dom";
import { processingForm } from "../processing_form";
import { hasLiveProcessing, packageBadge } from "./badges";
import type { Context, View } from "./context";

export function createStream(ctx: Context): View {
  if (ctx.identity.kind !== "organization") throw new Error("an organization's view");
  const org = ctx.identity.organization;
  const allowed = hasLiveProcessing(org);

  const name = h("input", { name: "name", "data-field": "name", required: true, maxLength: 200 });
  const id = h("input", {
    name: "stream_id",
    "data-field": "stream_id",
    pattern: "[A-Za-z0-9_-]{1,64}",
    placeholder: "generated when empty",
    maxLength: 64,
  });
  // SRT's own encryption: the server makes the passphrase.
  const srtEncryption = h(
    "select",
    { name: "srt_encryption", "data-field": "srt_encryption" },
    h("option", { value: "" }, "none"),
    h("option", { value: "0" }, "required, key length of the encoder's choice"),
    h("option", { value: "16" }, "required, AES-128"),
    h("option", { value: "24" }, "required, AES-192"),
    h("option", { value: "32" }, "required, AES-256"),
  );
  const nameError = h("small.error", { "data-error-for": "name", role: "alert" });
  const idError = h("small.error", { "data-error-for": "stream_id", role: "alert" });
  const form = processingForm();
  const formError = h("p.error", { role: "alert" });
  const steps = h("ol.steps", {}, h("li.current", {}, "Name"), h("li", {}, "Live processing"));
  const body = h("div.step");

  const stepOne = () => {
    steps.children[0].className = "current";
    steps.children[1].className = "";
    const next = h("button.primary", { type: "submit" }, "Next");
    const page = h(
      "form",
      {},
      h("label", {}, h("span", {}, "Name"), name, nameError),
      h("label", {}, h("span", {}, "Stream id"), id, h("small.hint", {}, "letters, digits, _ and -, up to 64"), idError),
      h(
        "label",
        {},
        h("span", {}, "SRT encryption"),
        srtEncryption,
        h("small.hint", {}, "SRT publishers must then use the stream's passphrase (shown once created)"),
      ),
      h("div.actions", {}, h("a.button", { href: "#/" }, "Cancel"), next),
    );
    page.addEventListener("submit", (event) => {
      event.preventDefault();
      nameError.textContent = name.value.trim() ? "" : "a name is required";
      idError.textContent = id.value && !id.checkValidity() ? "must be 1–64 of A-Z, a-z, 0-9, _ and -" : "";
      if (!nameError.textContent && !idError.textContent) stepTwo();
    });
    replace(body, page);
    name.focus();
  };

  const stepTwo = () => {
    steps.children[0].className = "done";
    steps.children[1].className = "current";
    const submit = h("button.primary", { type: "submit" }, "Create stream");
    const back = h("button", { type: "button", onclick: stepOne }, "Back");
    const processingPart = allowed
      ? form.element
      : h(
          "div.upgrade",
          {},
          h("p", {}, "Live processing (thumbnails, motion clips, recording, replay): ", packageBadge(org, ctx.config.operatorContact)),
          h("p.muted", {}, "The stream can still be created and published to."),
        );
    const page = h("form", { novalidate: true }, processingPart, formError, h("div.actions", {}, back, submit));
    page.addEventListener("submit", async (event) => {
      event.preventDefault();
      formError.textContent = "";
      const options = allowed ? form.read() : create(processing.ProcessingOptionsSchema, {});
      if (!options) return;
      submit.disabled = true;
      try {
        const stream = await ctx.client.createStream({
          name: name.value.trim(),
          streamId: id.value.trim(),
          processing: options,
          srtEncryption: srtEncryption.value === "" ? undefined : { passphrase: "", keyLength: Number(srtEncryption.value) },
        });
        location.hash = `#/streams/${encodeURIComponent(stream.id)}`;
      } catch (error) {
        const violations = fieldViolations(error);
        const onFirstStep = violations.filter((v) => v.field === "name" || v.field === "stream_id");
        if (onFirstStep.length) {
          stepOne();
          for (const v of onFirstStep) (v.field === "name" ? nameError : idError).textContent = v.description;
          return;
        }
        if (!form.showViolations(violations)) {
          formError.textContent = errorReason(error) === "UPGRADE_NEEDED" ? `Upgrade needed: ${describe(error)}` : describe(error);
        }
      } finally {
        submit.disabled = false;
      }
    });
    replace(body, page);
  };

  stepOne();
  return { element: h("section.card.create", {}, h("h2", {}, "New stream"), steps, body) };
}
