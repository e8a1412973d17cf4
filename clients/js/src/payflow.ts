// payflow.js: what a merchant's page loads from PayFlow (/js/v1/payflow.js), shaped like the
// Stripe.js calls integrations make. The page itself never sees card data and never calls the
// API: PayFlow's frames (elements.html) do, and answer over postMessage.
//
//   const payflow = PayFlow("pk_test_...");
//   const elements = payflow.elements({ clientSecret });
//   elements.create("payment").mount("#payment-element");
//   const { error, paymentIntent } = await payflow.confirmPayment({ elements, redirect: "if_required" });

import {
  accept,
  challengeUrl,
  envelope,
  intentOf,
  originOf,
  returnUrl,
  withSlash,
  type IntentKind,
  type Notice,
  type Request,
  type StripeError,
} from "./protocol";
import { showCheckout, showChallenge } from "./modal";
import { customerActionOf } from "./upi";

export type MethodType = "card" | "upi" | "wallet";

export interface ElementOptions {
  /** What the customer may choose in the element (PayFlow's option; default: card only). UPI
   * offers a QR code for any UPI app or a collect request to a UPI ID; the wallet is approved
   * on PayFlow Wallet's page. */
  paymentMethodTypes?: MethodType[];
}

const TITLES = {
  upi_intent: "Pay with UPI",
  upi_collect: "Approve in your UPI app",
  wallet: "PayFlow Wallet",
};

export interface PayFlowOptions {
  /** Where PayFlow's API answers; by default where payflow.js itself was loaded from. */
  apiBase?: string;
}

type Intent = Record<string, any> & { id: string; status: string; client_secret: string };

export interface PaymentResult {
  paymentIntent?: Intent;
  error?: StripeError;
}

export interface SetupResult {
  setupIntent?: Intent;
  error?: StripeError;
}

export interface ConfirmOptions {
  elements: Elements;
  confirmParams?: { return_url?: string; payment_method_data?: { billing_details?: Record<string, unknown> } };
  redirect?: "always" | "if_required";
}

export interface CheckoutOptions {
  clientSecret: string;
  /** Shown at the top of the modal: the shop's name. */
  name?: string;
  description?: string;
}

type Handler = (event: any) => void;
type Distributed<T> = T extends unknown ? Omit<T, "id"> : never;
type Ask = Distributed<Request>;

const FRAME_PATH = "js/v1/elements.html";
// An intent in `processing` (a PSP that answers later) is read again this often, this long.
const POLL_MS = 400;
const POLL_TIMES = 25;

const scriptBase = (() => {
  const script = document.currentScript as HTMLScriptElement | null;
  return script?.src ? new URL("../../", script.src).toString() : undefined;
})();

/** One PayFlow frame and the replies it owes: requests are numbered, replies matched. */
class Frame {
  readonly iframe: HTMLIFrameElement;
  private next = 1;
  private waiting = new Map<number, (reply: Notice & { kind: "reply" }) => void>();
  private listeners: Handler[] = [];
  readonly ready: Promise<void>;

  constructor(
    private readonly client: PayFlowClient,
    role: "payment" | "controller",
    methods: MethodType[] = ["card"],
  ) {
    this.iframe = document.createElement("iframe");
    const hash = new URLSearchParams({ key: client.key, origin: location.origin, role, methods: methods.join(",") });
    this.iframe.src = `${client.apiBase}${FRAME_PATH}#${hash}`;
    this.iframe.title = role === "payment" ? "Secure card payment input frame" : "PayFlow controller";
    this.iframe.setAttribute("allow", "payment");
    let markReady: () => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.listen = (event: MessageEvent) => {
      const notice = accept<Notice>(event, client.apiOrigin, this.iframe.contentWindow);
      if (notice === null) return;
      if (notice.kind === "ready") markReady();
      if (notice.kind === "reply") {
        this.waiting.get(notice.id)?.(notice);
        this.waiting.delete(notice.id);
      }
      for (const listener of this.listeners) listener(notice);
    };
    window.addEventListener("message", this.listen);
  }

  private readonly listen: (event: MessageEvent) => void;

  /** Take the frame out of the page; requests still waiting are answered with an error. */
  remove(): void {
    window.removeEventListener("message", this.listen);
    this.iframe.remove();
    for (const [id, reply] of this.waiting) {
      reply({ kind: "reply", id, error: { type: "integration_error", message: "The element was unmounted." } });
    }
    this.waiting.clear();
  }

  onNotice(listener: Handler): void {
    this.listeners.push(listener);
  }

  async ask(request: Ask): Promise<{ body?: Record<string, any>; error?: StripeError }> {
    await this.ready;
    const id = this.next++;
    const reply = new Promise<Notice & { kind: "reply" }>((resolve) => this.waiting.set(id, resolve));
    this.iframe.contentWindow?.postMessage(envelope({ ...request, id }), this.client.apiOrigin);
    const { body, error } = await reply;
    return { body, error };
  }
}

/** The payment element: card number, expiry and CVC in PayFlow's frame (and UPI and the
 * wallet when the merchant offers them). */
export class PaymentElement {
  private frame: Frame | null = null;
  private handlers = new Map<string, Handler[]>();
  complete = false;

  constructor(
    private readonly client: PayFlowClient,
    private readonly options: ElementOptions = {},
  ) {}

  /** Put the element into the page at `target` (a CSS selector or an element). */
  mount(target: string | HTMLElement): this {
    const host = typeof target === "string" ? document.querySelector<HTMLElement>(target) : target;
    if (!host) throw new Error(`payflow.js: nothing matches ${String(target)} to mount the element in`);
    const frame = new Frame(this.client, "payment", this.options.paymentMethodTypes);
    frame.iframe.style.cssText = "border:0;width:100%;height:150px;display:block;overflow:hidden;";
    frame.iframe.setAttribute("scrolling", "no");
    frame.onNotice((notice: Notice) => {
      if (notice.kind === "resize") frame.iframe.style.height = `${notice.height}px`;
      if (notice.kind === "ready") this.emit("ready", { elementType: "payment" });
      if (notice.kind === "change") {
        this.complete = notice.complete;
        this.emit("change", {
          elementType: "payment",
          complete: notice.complete,
          empty: notice.empty,
          error: notice.error,
          value: { type: notice.method ?? "card", brand: notice.brand },
        });
      }
    });
    this.frame?.remove();
    host.replaceChildren(frame.iframe);
    this.frame = frame;
    return this;
  }

  /** `ready` (the frame answers) and `change` ({complete, empty, error, value}). */
  on(event: "ready" | "change", handler: Handler): this {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), handler]);
    return this;
  }

  focus(): void {
    void this.frame?.ask({ kind: "focus" });
  }

  clear(): void {
    void this.frame?.ask({ kind: "clear" });
  }

  unmount(): void {
    this.frame?.remove();
    this.frame = null;
  }

  private emit(event: string, payload: unknown): void {
    for (const handler of this.handlers.get(event) ?? []) handler(payload);
  }

  /** The PaymentMethod made from what the customer typed (inside the frame). */
  async tokenize(billing?: Record<string, unknown>): Promise<{ body?: Record<string, any>; error?: StripeError }> {
    if (!this.frame) {
      return { error: { type: "integration_error", message: "Mount the payment element before confirming." } };
    }
    return this.frame.ask({ kind: "tokenize", billing_details: billing });
  }
}

export class Elements {
  private element: PaymentElement | null = null;

  constructor(
    private readonly client: PayFlowClient,
    readonly clientSecret: string,
  ) {}

  create(type: "payment" | "card", options: ElementOptions = {}): PaymentElement {
    if (type !== "payment" && type !== "card") throw new Error(`payflow.js: no element of type ${type}`);
    const methods = options.paymentMethodTypes ?? ["card"];
    if (!methods.length || methods.some((m) => !["card", "upi", "wallet"].includes(m))) {
      throw new Error(`payflow.js: paymentMethodTypes takes card, upi and wallet, not ${methods.join(",")}`);
    }
    this.element = new PaymentElement(this.client, type === "card" ? {} : options);
    return this.element;
  }

  getElement(type: "payment" | "card"): PaymentElement | null {
    return type === "payment" || type === "card" ? this.element : null;
  }
}

export class PayFlowClient {
  readonly apiBase: string;
  readonly apiOrigin: string;
  private controller: Frame | null = null;

  constructor(
    readonly key: string,
    options: PayFlowOptions = {},
  ) {
    if (!/^pk_(test|live)_/.test(key)) {
      throw new Error("payflow.js: PayFlow() takes a publishable key (pk_test_...), never a secret key");
    }
    const base = options.apiBase ?? scriptBase;
    if (!base) throw new Error("payflow.js: pass {apiBase} when payflow.js is not loaded from PayFlow");
    this.apiBase = withSlash(base);
    this.apiOrigin = originOf(this.apiBase);
  }

  elements(options: { clientSecret: string }): Elements {
    if (!options?.clientSecret || intentOf(options.clientSecret) === null) {
      throw new Error("payflow.js: elements() needs the intent's clientSecret");
    }
    return new Elements(this, options.clientSecret);
  }

  confirmPayment(options: ConfirmOptions): Promise<PaymentResult> {
    return this.confirm("payment_intents", options).then(({ intent, error }) => ({ paymentIntent: intent, error }));
  }

  confirmSetup(options: ConfirmOptions): Promise<SetupResult> {
    return this.confirm("setup_intents", options).then(({ intent, error }) => ({ setupIntent: intent, error }));
  }

  async retrievePaymentIntent(clientSecret: string): Promise<PaymentResult> {
    const { intent, error } = await this.retrieve("payment_intents", clientSecret);
    return { paymentIntent: intent, error };
  }

  async retrieveSetupIntent(clientSecret: string): Promise<SetupResult> {
    const { intent, error } = await this.retrieve("setup_intents", clientSecret);
    return { setupIntent: intent, error };
  }

  /** The no-redirect checkout: a modal with the payment element and a Pay button. Resolves
   * with the PaymentIntent once paid, or an error of code `checkout_closed` if the customer
   * closes it; declines are shown in the modal, where the customer may try another card. */
  openCheckout(options: CheckoutOptions): Promise<PaymentResult> {
    const named = intentOf(options?.clientSecret ?? "");
    if (named === null || named.intent !== "payment_intents") {
      return Promise.resolve({ error: integration("openCheckout() needs a PaymentIntent's clientSecret") });
    }
    return showCheckout(this, options);
  }

  private controllerFrame(): Frame {
    if (this.controller === null) {
      this.controller = new Frame(this, "controller");
      this.controller.iframe.style.cssText = "display:none";
      this.controller.iframe.setAttribute("aria-hidden", "true");
      const frame = this.controller.iframe;
      // Called from a script in <head>, there is no body yet to put the frame in.
      if (document.body) document.body.appendChild(frame);
      else document.addEventListener("DOMContentLoaded", () => document.body.appendChild(frame), { once: true });
    }
    return this.controller;
  }

  private async retrieve(kind: IntentKind, clientSecret: string): Promise<{ intent?: Intent; error?: StripeError }> {
    const named = intentOf(clientSecret ?? "");
    if (named === null || named.intent !== kind) {
      return { error: integration("That is not the client secret of this kind of intent.") };
    }
    const { body, error } = await this.controllerFrame().ask({ kind: "retrieve", intent: kind, client_secret: clientSecret });
    return { intent: body as Intent | undefined, error };
  }

  private async confirm(kind: IntentKind, options: ConfirmOptions): Promise<{ intent?: Intent; error?: StripeError }> {
    const elements = options?.elements;
    const element = elements?.getElement("payment");
    if (!elements || !element) return { error: integration("confirm needs {elements} with a mounted payment element.") };
    const named = intentOf(elements.clientSecret);
    if (named === null || named.intent !== kind) {
      return { error: integration(`These elements were made for another kind of intent than ${kind}.`) };
    }
    const redirect = options.redirect ?? "always";
    const returnTo = options.confirmParams?.return_url;
    if (redirect === "always" && !returnTo) {
      return { error: integration("confirmParams.return_url is required unless redirect is 'if_required'.") };
    }
    const pm = await element.tokenize(options.confirmParams?.payment_method_data?.billing_details);
    if (pm.error || !pm.body) return { error: pm.error };
    const clientSecret = elements.clientSecret;
    const confirmed = await this.controllerFrame().ask({
      kind: "confirm",
      intent: kind,
      client_secret: clientSecret,
      payment_method: pm.body.id,
      // A card challenge under 'if_required' runs in a modal: no return_url, no redirect.
      return_url: redirect === "always" ? returnTo : undefined,
    });
    if (confirmed.error) return { error: confirmed.error };
    return this.settle(kind, confirmed.body as Intent, clientSecret, redirect, returnTo);
  }

  /** Follows the intent until the customer has nothing left to do. */
  async settle(
    kind: IntentKind,
    intent: Intent,
    clientSecret: string,
    redirect: "always" | "if_required",
    returnTo?: string,
  ): Promise<{ intent?: Intent; error?: StripeError }> {
    if (intent.status === "requires_action") {
      if (redirect === "always" && intent.next_action?.type === "redirect_to_url") {
        const url = challengeUrl(this.apiBase, intent, kind, { key: this.key, client_secret: clientSecret, mode: "redirect" });
        location.assign(url);
        return new Promise(() => undefined); // the page is leaving, as Stripe.js's never resolves
      }
      const url = challengeUrl(this.apiBase, intent, kind, {
        key: this.key,
        client_secret: clientSecret,
        mode: "modal",
        origin: location.origin,
      });
      // A UPI app or the wallet's page answers later: PayFlow's page shows what the customer
      // needs (QR code, deep link, countdown) and closes once the PSP's webhook has moved the
      // intent on.
      const waiting = customerActionOf(intent.next_action);
      await showChallenge(this.apiOrigin, url, waiting ? TITLES[waiting.kind] : undefined, waiting?.kind === "upi_intent");
      const after = await this.retrieve(kind, clientSecret);
      if (after.error || !after.intent) return after;
      intent = after.intent;
    }
    for (let i = 0; intent.status === "processing" && i < POLL_TIMES; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      const again = await this.retrieve(kind, clientSecret);
      if (again.error || !again.intent) return again;
      intent = again.intent;
    }
    const failure = intent.last_payment_error ?? intent.last_setup_error;
    if (intent.status === "requires_payment_method" && failure) {
      return { error: { ...failure, [kind === "payment_intents" ? "payment_intent" : "setup_intent"]: intent } };
    }
    if (redirect === "always" && returnTo) {
      location.assign(returnUrl(returnTo, kind, intent));
      return new Promise(() => undefined);
    }
    return { intent };
  }
}

function integration(message: string): StripeError {
  return { type: "integration_error", message };
}

/** `PayFlow(publishableKey, {apiBase})`, as `Stripe(publishableKey)`. */
export function PayFlow(key: string, options?: PayFlowOptions): PayFlowClient {
  return new PayFlowClient(key, options);
}

(window as unknown as { PayFlow: typeof PayFlow }).PayFlow = PayFlow;
