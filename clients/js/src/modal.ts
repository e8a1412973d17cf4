// The overlays payflow.js draws on the merchant's page: the 3-D Secure challenge (PayFlow's
// page in a frame) and the modal checkout. Each lives in a shadow root, so neither the
// merchant's CSS nor ours leaks across; card data stays in PayFlow's frames all the same.

import { money } from "./money";
import { accept, type Notice } from "./protocol";
import type { CheckoutOptions, PayFlowClient, PaymentResult } from "./payflow";

const STYLE = `
  .backdrop { position: fixed; inset: 0; background: rgba(10, 15, 35, .55); display: flex;
    align-items: center; justify-content: center; font: 15px/1.4 system-ui, -apple-system,
    "Segoe UI", Roboto, sans-serif; color: #1a1f36; }
  .dialog { background: #fff; border-radius: 12px; width: min(440px, calc(100vw - 24px));
    box-shadow: 0 24px 60px rgba(0, 0, 0, .3); overflow: hidden; position: relative; }
  .challenge { height: min(360px, calc(100vh - 24px)); }
  .challenge.tall { height: min(640px, calc(100vh - 24px)); }
  .challenge iframe { border: 0; width: 100%; height: 100%; display: block; }
  header { background: #635bff; color: #fff; padding: 18px 22px; }
  header h2 { margin: 0; font-size: 18px; }
  header p { margin: 4px 0 0; opacity: .85; font-size: 14px; }
  .amount { font-size: 26px; font-weight: 700; margin-top: 10px; opacity: 1; }
  .body { padding: 20px 22px 22px; }
  .error { color: #df1b41; font-size: 14px; margin: 10px 0 0; }
  .error:empty { display: none; }
  .done { color: #0e8a4d; font-weight: 600; margin: 10px 0 0; }
  .done:empty { display: none; }
  .pay { width: 100%; margin-top: 16px; font: inherit; font-weight: 600; padding: 12px; border: 0;
    border-radius: 6px; background: #635bff; color: #fff; cursor: pointer; }
  .pay:disabled { opacity: .6; cursor: default; }
  .close { position: absolute; top: 10px; right: 12px; border: 0; background: transparent;
    color: #fff; font-size: 24px; line-height: 1; cursor: pointer; }
  .challenge .close { color: #6b7185; }
  footer { color: #6b7185; font-size: 12px; text-align: center; margin-top: 12px; }
`;

function overlay(layer: number): { host: HTMLElement; root: ShadowRoot } {
  const host = document.createElement("div");
  host.style.cssText = `position:fixed;inset:0;z-index:${2147483000 + layer};`;
  const root = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = STYLE;
  root.appendChild(style);
  document.body.appendChild(host);
  return { host, root };
}

function make<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text = ""): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) element.setAttribute(name, value);
  if (text) element.textContent = text;
  return element;
}

/** PayFlow's 3-D Secure page in a modal frame; resolves when the customer has answered it
 * (or closed it: the intent then still requires_action, which the caller reads). */
export function showChallenge(
  apiOrigin: string,
  url: string,
  title = "3-D Secure authentication",
  tall = false,
): Promise<void> {
  const { host, root } = overlay(2);
  const backdrop = make("div", { class: "backdrop", "data-payflow": "challenge" });
  // A QR code and its buttons need more room than a bank's two buttons.
  const dialog = make("div", { class: tall ? "dialog challenge tall" : "dialog challenge", role: "dialog", "aria-label": title });
  const frame = make("iframe", { title, src: url });
  const close = make("button", { class: "close", type: "button", "aria-label": "Close" }, "×");
  dialog.append(frame, close);
  backdrop.appendChild(dialog);
  root.appendChild(backdrop);
  return new Promise((resolve) => {
    const done = (): void => {
      window.removeEventListener("message", listen);
      host.remove();
      resolve();
    };
    const listen = (event: MessageEvent): void => {
      const notice = accept<Notice>(event, apiOrigin, frame.contentWindow);
      if (notice?.kind === "challenge_done") done();
    };
    window.addEventListener("message", listen);
    close.addEventListener("click", done);
  });
}

/** The modal checkout (PayFlowClient.openCheckout). */
export async function showCheckout(client: PayFlowClient, options: CheckoutOptions): Promise<PaymentResult> {
  const found = await client.retrievePaymentIntent(options.clientSecret);
  if (found.error || !found.paymentIntent) return found;
  const intent = found.paymentIntent;
  const price = money(intent.amount, intent.currency);

  const { host, root } = overlay(1);
  const backdrop = make("div", { class: "backdrop", "data-payflow": "checkout" });
  const dialog = make("div", { class: "dialog", role: "dialog", "aria-label": "Checkout" });
  const header = make("header");
  header.append(make("h2", {}, options.name ?? "Checkout"));
  if (options.description ?? intent.description) header.append(make("p", {}, options.description ?? intent.description));
  header.append(make("p", { class: "amount" }, price));
  const close = make("button", { class: "close", type: "button", "aria-label": "Close" }, "×");
  const body = make("div", { class: "body" });
  const slot = make("div", { class: "element" });
  const error = make("p", { class: "error", role: "alert" });
  const success = make("p", { class: "done", role: "status" });
  const pay = make("button", { class: "pay", type: "button" }, `Pay ${price}`);
  body.append(slot, error, success, pay, make("footer", {}, "Card details are entered on PayFlow's secure frame."));
  dialog.append(header, close, body);
  backdrop.appendChild(dialog);
  root.appendChild(backdrop);

  const elements = client.elements({ clientSecret: options.clientSecret });
  const element = elements.create("payment").mount(slot);
  element.on("ready", () => element.focus());

  return new Promise((resolve) => {
    const finish = (result: PaymentResult): void => {
      element.unmount();
      host.remove();
      resolve(result);
    };
    close.addEventListener("click", () =>
      finish({ error: { type: "validation_error", code: "checkout_closed", message: "The customer closed the checkout." } }),
    );
    pay.addEventListener("click", async () => {
      pay.disabled = true;
      error.textContent = "";
      pay.textContent = "Processing…";
      const result = await client.confirmPayment({ elements, redirect: "if_required" });
      if (result.paymentIntent) {
        success.textContent = "Payment successful";
        pay.textContent = "Paid";
        setTimeout(() => finish(result), 600);
        return;
      }
      error.textContent = result.error?.message ?? "The payment did not go through.";
      pay.disabled = false;
      pay.textContent = `Pay ${price}`;
    });
  });
}
