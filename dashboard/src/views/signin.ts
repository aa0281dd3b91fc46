/** The sign-in form: an organization's API key, or the admin key. */
import { describe } from "../api";
import { h } from "../dom";
import { identify, remember, type Identity } from "../session";

export function signIn(onSignedIn: (identity: Identity) => void, problem?: string): HTMLElement {
  const key = h("input", {
    type: "password",
    name: "api_key",
    autocomplete: "current-password",
    placeholder: "lp_… or lpadmin_…",
    required: true,
  });
  const error = h("p.error", { role: "alert" }, problem ?? "");
  const submit = h("button.primary", { type: "submit" }, "Sign in");
  const form = h(
    "form.card.signin",
    {},
    h("h2", {}, "Sign in"),
    h("p.muted", {}, "Your organization's API key, or the operator's admin key. It is kept in this tab only."),
    h("label", {}, h("span", {}, "API key"), key),
    error,
    submit,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    submit.disabled = true;
    error.textContent = "";
    try {
      const identity = await identify(key.value.trim());
      remember(identity);
      onSignedIn(identity);
    } catch (e) {
      error.textContent = describe(e);
    } finally {
      submit.disabled = false;
    }
  });
  return h("div.center", {}, form);
}
