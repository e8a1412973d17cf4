// Sign in with a merchant's secret key (and, for the simulator's fault switches, the sandbox's
// admin key). The key is checked with one read before it is kept; docs/dashboard.md says where
// it is kept and why that is enough for a test-mode sandbox.

import { ApiError, api, keys } from "../api";
import { h } from "../dom";

export function renderSignIn(done: () => void): HTMLElement {
  const secret = h("input", { id: "secret-key", name: "secret_key", type: "password", autocomplete: "off", placeholder: "sk_test_...", required: true });
  const admin = h("input", { id: "admin-key", name: "admin_key", type: "password", autocomplete: "off", placeholder: "sk_admin_... (optional)" });
  const message = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { class: "signin card", id: "signin" },
    h("h1", {}, "PayFlow dashboard"),
    h("p", { class: "muted" }, "Test mode. Sign in with a merchant's secret key; add the sandbox admin key to switch connector faults."),
    h("label", {}, "Secret key", secret),
    h("label", {}, "Admin key", admin),
    h("button", { type: "submit" }, "Sign in"),
    message,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    message.textContent = "";
    if (!secret.value.startsWith("sk_")) {
      message.textContent = "A secret key starts with sk_ (publishable keys cannot read the dashboard's data).";
      return;
    }
    keys.save(secret.value.trim(), admin.value.trim());
    try {
      await api.get("/v1/payment_intents", { limit: 1 });
      done();
    } catch (error) {
      keys.clear();
      message.textContent = error instanceof ApiError ? error.message : String(error);
    }
  });
  return h("div", { class: "signin-wrap" }, form);
}
