/**
 * The live processing settings of a stream as a form, used to create a
 * stream and to change processing on a live one. Each feature has its
 * switch and its settings with the documented ranges; a setting out of
 * range, found here or by the server, shows its error next to its field
 * (fields are named by their API path, as the server's errors name them).
 */
import { create, processing } from "./api";
import { h } from "./dom";

type Options = processing.ProcessingOptions;

/** A number setting: its API path, label, range and default. */
interface Setting {
  field: string;
  label: string;
  min: number;
  max?: number;
  value: number;
}

export interface ProcessingForm {
  element: HTMLElement;
  /** The options, or null after showing the errors of settings out of range. */
  read(): Options | null;
  /** Shows the server's field errors; false when none names a field here. */
  showViolations(violations: { field: string; description: string }[]): boolean;
}

const ENTIRE = "entire stream";

export function processingForm(initial?: Options): ProcessingForm {
  const errors = new Map<string, HTMLElement>();
  const inputs = new Map<string, HTMLInputElement>();

  const numberField = (setting: Setting, enabled: HTMLInputElement) => {
    const range = setting.max === undefined ? `${setting.min} s or more` : `${setting.min}–${setting.max} s`;
    const input = h("input", {
      type: "number",
      name: setting.field,
      "data-field": setting.field,
      min: setting.min,
      max: setting.max,
      step: 1,
      value: String(setting.value),
      required: true,
    });
    const error = h("small.error", { "data-error-for": setting.field, role: "alert" });
    inputs.set(setting.field, input);
    errors.set(setting.field, error);
    const sync = () => (input.disabled = !enabled.checked);
    enabled.addEventListener("change", sync);
    sync();
    return h("label.setting", {}, h("span", {}, setting.label), input, h("small.hint", {}, range), error);
  };

  const entireStream = (field: string, isEntire: boolean, seconds: HTMLElement, enabled: HTMLInputElement) => {
    const box = h("input", { type: "checkbox", name: field, checked: isEntire });
    const input = seconds.querySelector("input")!;
    const sync = () => (input.disabled = !enabled.checked || box.checked);
    box.addEventListener("change", sync);
    enabled.addEventListener("change", sync);
    sync();
    return { box, label: h("label.check", {}, box, ` ${ENTIRE}`) };
  };

  const feature = (name: string, title: string, description: string, on: boolean) => {
    const enabled = h("input", { type: "checkbox", name: `processing.${name}.enabled`, checked: on });
    return { enabled, head: h("label.feature-head", {}, enabled, h("strong", {}, ` ${title}`), h("small.hint", {}, ` ${description}`)) };
  };

  const t = initial?.thumbnail;
  const m = initial?.motionClip;
  const r = initial?.recording;
  const p = initial?.replay;

  const thumb = feature("thumbnail", "Thumbnail", "a snapshot every interval", t?.enabled ?? true);
  const thumbInterval = numberField(
    { field: "processing.thumbnail.interval_seconds", label: "Interval", min: 10, max: 3600, value: t?.intervalSeconds || 10 },
    thumb.enabled,
  );
  const motion = feature("motion_clip", "Motion clip", "a short moving preview every interval", m?.enabled ?? false);
  const motionDuration = numberField(
    { field: "processing.motion_clip.duration_seconds", label: "Duration", min: 1, max: 60, value: m?.durationSeconds || 3 },
    motion.enabled,
  );
  const motionInterval = numberField(
    { field: "processing.motion_clip.interval_seconds", label: "Interval", min: 10, max: 3600, value: m?.intervalSeconds || 30 },
    motion.enabled,
  );
  const rec = feature("recording", "Recording", "VOD files, available after the session", r?.enabled ?? false);
  const recSeconds = numberField(
    { field: "processing.recording.duration_seconds", label: "Segment", min: 1, value: r?.durationSeconds || 60 },
    rec.enabled,
  );
  const recEntire = entireStream("processing.recording.entire_stream", r?.entireStream ?? false, recSeconds, rec.enabled);
  const replay = feature("replay", "Replay", "a buffer to rewind the live stream, and clips", p?.enabled ?? false);
  const replaySeconds = numberField(
    { field: "processing.replay.duration_seconds", label: "Buffer", min: 1, value: p?.durationSeconds || 120 },
    replay.enabled,
  );
  const replayEntire = entireStream("processing.replay.entire_stream", p?.entireStream ?? false, replaySeconds, replay.enabled);

  const element = h(
    "div.processing",
    {},
    h("fieldset.feature", {}, thumb.head, h("div.settings", {}, thumbInterval)),
    h("fieldset.feature", {}, motion.head, h("div.settings", {}, motionDuration, motionInterval)),
    h("fieldset.feature", {}, rec.head, h("div.settings", {}, recSeconds, recEntire.label)),
    h("fieldset.feature", {}, replay.head, h("div.settings", {}, replaySeconds, replayEntire.label)),
  );

  const clearErrors = () => errors.forEach((e) => (e.textContent = ""));
  const showError = (field: string, message: string) => {
    const error = errors.get(field);
    if (!error) return false;
    error.textContent = message;
    inputs.get(field)?.setAttribute("aria-invalid", "true");
    return true;
  };

  /** The value of a setting, or null after showing why it is out of range. */
  const value = (field: string): number | null => {
    const input = inputs.get(field)!;
    input.removeAttribute("aria-invalid");
    if (input.disabled) return Number(input.value) || 0;
    const n = Number(input.value);
    const [min, max] = [Number(input.min), input.max ? Number(input.max) : Infinity];
    if (!Number.isInteger(n) || n < min || n > max) {
      showError(field, max === Infinity ? `must be a whole number of seconds, at least ${min}` : `must be ${min}–${max} seconds`);
      return null;
    }
    return n;
  };

  return {
    element,
    read() {
      clearErrors();
      const values = {
        thumbInterval: value("processing.thumbnail.interval_seconds"),
        motionDuration: value("processing.motion_clip.duration_seconds"),
        motionInterval: value("processing.motion_clip.interval_seconds"),
        recSeconds: value("processing.recording.duration_seconds"),
        replaySeconds: value("processing.replay.duration_seconds"),
      };
      if (Object.values(values).some((v) => v === null)) return null;
      return create(processing.ProcessingOptionsSchema, {
        thumbnail: { enabled: thumb.enabled.checked, intervalSeconds: values.thumbInterval!, format: t?.format, width: t?.width, height: t?.height },
        motionClip: {
          enabled: motion.enabled.checked,
          durationSeconds: values.motionDuration!,
          intervalSeconds: values.motionInterval!,
          format: m?.format,
          width: m?.width,
        },
        recording: { enabled: rec.enabled.checked, durationSeconds: recEntire.box.checked ? 0 : values.recSeconds!, entireStream: recEntire.box.checked },
        replay: { enabled: replay.enabled.checked, durationSeconds: replayEntire.box.checked ? 0 : values.replaySeconds!, entireStream: replayEntire.box.checked },
      });
    },
    showViolations(violations) {
      clearErrors();
      return violations.map((v) => showError(v.field, v.description)).some(Boolean);
    },
  };
}
