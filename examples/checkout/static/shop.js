// The shop's own script: it never sees card details. Its server creates the PaymentIntent
// (secret key); payflow.js confirms it from PayFlow's frame (publishable key).
const shop = document.getElementById("shop").dataset;
const payflow = PayFlow(shop.publishableKey, { apiBase: shop.api });
const pay = document.getElementById("pay");
const message = document.getElementById("message");
let elements = null;

const currency = document.getElementById("currency");
const PRICES = { eur: "€20.00", inr: "₹1,799.00" };
// UPI is for rupees; PayFlow Wallet pays in either.
const METHODS = { eur: ["card", "wallet"], inr: ["card", "upi", "wallet"] };

async function newPaymentIntent() {
  const response = await fetch("/create-payment-intent", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ item: "t-shirt", currency: currency.value }),
  });
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error?.message ?? "The shop could not start a payment.");
  return answer.clientSecret;
}

function say(text, kind) {
  message.textContent = text;
  message.className = kind;
}

async function setUp() {
  pay.disabled = true;
  const price = PRICES[currency.value];
  document.getElementById("price").textContent = price;
  pay.textContent = `Pay ${price}`;
  document.getElementById("modal").textContent = `Pay ${price} in a modal checkout`;
  elements = payflow.elements({ clientSecret: await newPaymentIntent() });
  const element = elements.create("payment", { paymentMethodTypes: METHODS[currency.value] });
  element.on("ready", () => (pay.disabled = false));
  element.mount("#payment-element");
}

currency.addEventListener("change", () => {
  say("", "");
  setUp().catch((problem) => say(problem.message, "error"));
});

pay.addEventListener("click", async () => {
  pay.disabled = true;
  say("Processing…", "");
  const { error, paymentIntent } = await payflow.confirmPayment({
    elements,
    confirmParams: { return_url: `${location.origin}/complete` },
    redirect: document.getElementById("flow").value,
  });
  pay.disabled = false;
  if (error) {
    say(error.message, "error");
    return;
  }
  say(`Payment ${paymentIntent.status}: ${paymentIntent.id}`, "ok");
  pay.disabled = paymentIntent.status === "succeeded";
});

document.getElementById("modal").addEventListener("click", async () => {
  const { error, paymentIntent } = await payflow.openCheckout({
    clientSecret: await newPaymentIntent(),
    name: "Example shop",
    description: document.querySelector(".item h2").textContent,
  });
  if (error) say(error.message, "error");
  else say(`Payment ${paymentIntent.status}: ${paymentIntent.id}`, "ok");
});

setUp().catch((problem) => say(problem.message, "error"));
