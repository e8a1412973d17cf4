// A checkout-shaped scenario with the official stripe-node client, unchanged, against PayFlow.
//
// Run by tests/integration/test_stripe_node.py: `node scenario.mjs` with PAYFLOW_API_URL (the
// sandbox, http://127.0.0.1:PORT) and PAYFLOW_SECRET_KEY (a merchant's key). Prints one JSON
// line per step ({"step", "ok", "detail"}), then {"bodies": [...]}: every object stripe-node
// returned and every webhook event delivered, which the test checks against Stripe's schemas.
// Exits 1 when a step fails.

import http from "node:http";

import Stripe from "stripe";

const base = new URL(process.env.PAYFLOW_API_URL);
const stripe = new Stripe(process.env.PAYFLOW_SECRET_KEY, {
  host: base.hostname,
  port: Number(base.port),
  protocol: base.protocol.replace(":", ""),
  maxNetworkRetries: 2,
  telemetry: false,
});

const bodies = [];
const seen = (object) => {
  bodies.push(JSON.parse(JSON.stringify(object)));
  return object;
};

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// A webhook receiver on 127.0.0.1: keeps each delivery's raw body and Stripe-Signature header.
function startReceiver() {
  const deliveries = [];
  const waiters = [];
  const server = http.createServer((request, response) => {
    const chunks = [];
    request.on("data", (chunk) => chunks.push(chunk));
    request.on("end", () => {
      deliveries.push({
        body: Buffer.concat(chunks).toString("utf8"),
        signature: request.headers["stripe-signature"],
      });
      waiters.splice(0).forEach((wake) => wake());
      response.writeHead(200, { "Content-Type": "application/json" });
      response.end('{"received":true}');
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const url = `http://127.0.0.1:${server.address().port}/stripe-node-hooks`;
      const waitFor = async (predicate, timeoutMs = 15000) => {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const found = deliveries.find(predicate);
          if (found) return found;
          const left = deadline - Date.now();
          check(left > 0, `no matching webhook delivery in ${timeoutMs} ms`);
          await new Promise((wake) => {
            waiters.push(wake);
            setTimeout(wake, Math.min(left, 200));
          });
        }
      };
      resolve({ url, waitFor, close: () => server.close() });
    });
  });
}

// What the steps share: the receiver, the endpoint, the PaymentIntent, and so on.
const state = {};

const steps = [
  async function registerWebhookEndpoint() {
    state.receiver = await startReceiver();
    state.endpoint = seen(
      await stripe.webhookEndpoints.create({
        url: state.receiver.url,
        enabled_events: [
          "payment_intent.amount_capturable_updated",
          "payment_intent.succeeded",
          "charge.refunded",
        ],
      }),
    );
    check(state.endpoint.secret.startsWith("whsec_"), "the endpoint's secret is whsec_...");
    return state.endpoint.id;
  },

  async function createAndConfirmWithPmCardVisa() {
    state.pi = seen(
      await stripe.paymentIntents.create({
        amount: 2000,
        currency: "usd",
        capture_method: "manual",
        payment_method: "pm_card_visa",
        confirm: true,
        metadata: { order_id: "node-1" },
      }),
    );
    check(state.pi.status === "requires_capture", `status ${state.pi.status}`);
    check(state.pi.amount_capturable === 2000, "the whole amount is capturable");
    return state.pi.id;
  },

  async function retrieve() {
    const again = seen(await stripe.paymentIntents.retrieve(state.pi.id));
    check(again.id === state.pi.id && again.metadata.order_id === "node-1", "same PaymentIntent");
    return again.status;
  },

  async function listWithAutoPagination() {
    for (let i = 0; i < 3; i += 1) {
      seen(await stripe.paymentIntents.create({ amount: 500 + i, currency: "eur" }));
    }
    const page = seen(await stripe.paymentIntents.list({ limit: 2 }));
    check(page.has_more, "a first page of 2 out of 4 has more");
    const ids = [];
    for await (const pi of stripe.paymentIntents.list({ limit: 2 })) {
      ids.push(seen(pi).id);
    }
    check(ids.length === 4 && new Set(ids).size === 4, `auto-pagination gave ${ids.length}`);
    check(ids[3] === state.pi.id, "newest first: the first PaymentIntent comes last");
    return ids.length;
  },

  async function partialCapture() {
    state.pi = seen(await stripe.paymentIntents.capture(state.pi.id, { amount_to_capture: 1500 }));
    check(state.pi.status === "succeeded", `status ${state.pi.status}`);
    check(state.pi.amount_received === 1500, `amount_received ${state.pi.amount_received}`);
    return state.pi.amount_received;
  },

  async function refund() {
    const refunded = seen(
      await stripe.refunds.create({ payment_intent: state.pi.id, amount: 500 }),
    );
    check(refunded.object === "refund" && refunded.amount === 500, "a refund of 500");
    check(["pending", "succeeded"].includes(refunded.status), `status ${refunded.status}`);
    const listed = seen(await stripe.refunds.list({ payment_intent: state.pi.id }));
    check(listed.data.some((r) => r.id === refunded.id), "the refund is listed");
    return refunded.id;
  },

  async function declinedCardIsStripeCardError() {
    try {
      await stripe.paymentIntents.create({
        amount: 1000,
        currency: "usd",
        payment_method: "pm_card_chargeDeclinedInsufficientFunds",
        confirm: true,
      });
    } catch (error) {
      check(error instanceof Stripe.errors.StripeCardError, `got ${error.type}`);
      check(error.statusCode === 402, `status ${error.statusCode}`);
      check(error.decline_code === "insufficient_funds", `decline_code ${error.decline_code}`);
      check(error.payment_intent?.status === "requires_payment_method", "the PI can be retried");
      return error.code;
    }
    throw new Error("a declined card must throw");
  },

  async function webhookConstructEvent() {
    const delivery = await state.receiver.waitFor((d) => {
      const event = JSON.parse(d.body);
      return event.type === "payment_intent.succeeded" && event.data.object.id === state.pi.id;
    });
    const event = stripe.webhooks.constructEvent(
      delivery.body,
      delivery.signature,
      state.endpoint.secret,
    );
    check(event.data.object.amount_received === 1500, "the event carries the captured PI");
    seen(event);
    let tampered = false;
    try {
      stripe.webhooks.constructEvent(
        delivery.body.replace("1500", "9999"),
        delivery.signature,
        state.endpoint.secret,
      );
    } catch (error) {
      tampered = error instanceof Stripe.errors.StripeSignatureVerificationError;
    }
    check(tampered, "a tampered body fails verification");
    return event.id;
  },

  // The checkout a returning customer goes through: save a card, pay later without them.
  async function createCustomer() {
    state.customer = seen(await stripe.customers.create({ email: "node@example.com" }));
    check(state.customer.id.startsWith("cus_"), `id ${state.customer.id}`);
    return state.customer.id;
  },

  async function saveCardWithSetupIntent() {
    const setup = seen(
      await stripe.setupIntents.create({
        customer: state.customer.id,
        payment_method: "pm_card_visa",
        confirm: true,
        usage: "off_session",
      }),
    );
    check(setup.status === "succeeded", `status ${setup.status}`);
    const methods = seen(await stripe.customers.listPaymentMethods(state.customer.id));
    check(methods.data.map((m) => m.id).includes(setup.payment_method), "the card is saved");
    state.savedMethod = setup.payment_method;
    return setup.payment_method;
  },

  async function offSessionPayment() {
    state.offSession = seen(
      await stripe.paymentIntents.create({
        amount: 4200,
        currency: "usd",
        customer: state.customer.id,
        payment_method: state.savedMethod,
        off_session: true,
        confirm: true,
      }),
    );
    check(state.offSession.status === "succeeded", `status ${state.offSession.status}`);
    return state.offSession.id;
  },

  async function expandLatestCharge() {
    const pi = seen(
      await stripe.paymentIntents.retrieve(state.offSession.id, {
        expand: ["latest_charge.balance_transaction"],
      }),
    );
    check(pi.latest_charge.object === "charge", "latest_charge expanded");
    check(pi.latest_charge.balance_transaction.amount === 4200, "its balance transaction too");
    state.charge = pi.latest_charge;
    return pi.latest_charge.id;
  },

  async function refundByCharge() {
    const refund = seen(await stripe.refunds.create({ charge: state.charge.id }));
    check(refund.payment_intent === state.offSession.id, "the charge's PaymentIntent");
    check(refund.amount === 4200, `amount ${refund.amount}`);
    const charge = seen(await stripe.charges.retrieve(state.charge.id));
    check(charge.amount_refunded === 4200 && charge.refunded, "the charge shows the refund");
    return refund.id;
  },

  async function chargeRefundedWebhook() {
    const delivery = await state.receiver.waitFor((d) => {
      const event = JSON.parse(d.body);
      return event.type === "charge.refunded" && event.data.object.id === state.charge.id;
    });
    const event = stripe.webhooks.constructEvent(
      delivery.body,
      delivery.signature,
      state.endpoint.secret,
    );
    seen(event);
    return event.id;
  },

  async function deleteWebhookEndpoint() {
    const deleted = seen(await stripe.webhookEndpoints.del(state.endpoint.id));
    check(deleted.deleted === true, "deleted");
    return deleted.id;
  },
];

let failed = false;
for (const step of steps) {
  try {
    const detail = await step();
    console.log(JSON.stringify({ step: step.name, ok: true, detail }));
  } catch (error) {
    failed = true;
    console.log(
      JSON.stringify({ step: step.name, ok: false, detail: String(error?.stack ?? error) }),
    );
    break;
  }
}
state.receiver?.close();
console.log(JSON.stringify({ bodies }));
process.exit(failed ? 1 : 0);
