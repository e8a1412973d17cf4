"""The browser checkout end to end: the example shop (examples/checkout) with payflow.js, in
headless Chromium against the test session's sandbox. The shop's server holds the secret key;
the customer types into PayFlow's frame, on another origin.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.browser.conftest import screenshot
from tests.conftest import Api, new_merchant

ROOT = Path(__file__).resolve().parents[2]
NUMBER = "4242424242424242"
TIMEOUT_MS = 15_000


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "example_shop", ROOT / "examples" / "checkout" / "server.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def merchant_keys(api_url: str) -> dict:
    return new_merchant(api_url)


@pytest.fixture(scope="module")
def shop(api_url: str, merchant_keys: dict) -> Iterator[Any]:
    """The example shop's server on a free port, recording every request it receives."""
    if not (ROOT / "chalicelib" / "static" / "js" / "v1" / "payflow.js").exists():
        pytest.fail("payflow.js is not built: run `make test`, which builds clients/js")
    example = _example()
    state = example.Shop(
        api=api_url,
        secret_key=merchant_keys["secret_key"],
        publishable_key=merchant_keys["publishable_key"],
    )
    server = example.serve(state)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    server.shutdown()


@pytest.fixture
def api(api_url: str, merchant_keys: dict) -> Api:
    return Api(api_url, merchant_keys["secret_key"])


def _open(page: Any, shop: Any) -> Any:
    page.goto(shop.url + "/")
    page.wait_for_selector("#pay:not([disabled])", timeout=TIMEOUT_MS)
    return page.frame_locator("#payment-element iframe")


def _holds(text: str, secret: str) -> bool:
    """Whether `secret` stands in `text` as a value of its own: a CVC's three digits
    inside a port number or a random id are not the CVC."""
    return re.search(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])", text) is not None


def _type_card(frame: Any, number: str, expiry: str = "12 / 34", cvc: str = "123") -> None:
    frame.locator("#number").fill(number)
    frame.locator("#expiry").fill(expiry)
    frame.locator("#cvc").fill(cvc)


def _message(page: Any, pattern: str) -> str:
    locator = page.locator("#message")
    locator.filter(has_text=re.compile(pattern)).wait_for(timeout=TIMEOUT_MS)
    return str(locator.text_content())


def _intent_id(text: str) -> str:
    found = re.search(r"pi_[A-Za-z0-9]+", text)
    assert found, text
    return found.group(0)


def test_a_card_payment_succeeds(page: Any, shop: Any, api: Api) -> None:
    # Given the shop's page with PayFlow's payment element
    frame = _open(page, shop)
    # When the customer types Stripe's 4242 card (brand shown as they type) and pays
    frame.locator("#number").fill("4242 4242")
    assert frame.locator("#brand").text_content() == "visa"
    _type_card(frame, NUMBER)
    assert frame.locator("#number").input_value() == "4242 4242 4242 4242"
    screenshot(page, "checkout-card")
    page.click("#pay")
    # Then the page shows the payment succeeded, and so does the merchant's server
    text = _message(page, "Payment succeeded")
    screenshot(page, "checkout-success")
    pi = api.get(f"/v1/payment_intents/{_intent_id(text)}").json()
    assert pi["status"] == "succeeded" and pi["amount_received"] == 2000
    card = api.get(f"/v1/payment_methods/{pi['payment_method']}").json()["card"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa",
        "4242",
        12,
        2034,
    )
    assert page.console_errors == []


def test_a_decline_is_shown_to_the_customer_who_can_retry(page: Any, shop: Any, api: Api) -> None:
    frame = _open(page, shop)
    _type_card(frame, "4000000000009995")
    page.click("#pay")
    assert "insufficient funds" in _message(page, "insufficient funds")
    screenshot(page, "checkout-decline")
    # A wrong number is caught in the frame before anything is sent
    frame.locator("#number").fill("4242424242424241")
    assert frame.locator("#error").text_content() == "Your card number is invalid."
    # and the same PaymentIntent then succeeds with a good card
    _type_card(frame, NUMBER)
    page.click("#pay")
    pi = api.get(f"/v1/payment_intents/{_intent_id(_message(page, 'succeeded'))}").json()
    assert pi["status"] == "succeeded"
    assert pi["last_payment_error"] is None


def _challenge(page: Any, button: str) -> None:
    challenge = page.frame_locator("[data-payflow=challenge] iframe")
    challenge.locator("#summary").filter(has_text="€20.00").wait_for(timeout=TIMEOUT_MS)
    screenshot(page, "checkout-3ds")
    challenge.locator(button).click()


def test_3d_secure_passed_in_a_modal(page: Any, shop: Any, api: Api) -> None:
    frame = _open(page, shop)
    _type_card(frame, "4000002500003155")
    page.click("#pay")
    _challenge(page, "#complete")
    pi = api.get(f"/v1/payment_intents/{_intent_id(_message(page, 'succeeded'))}").json()
    assert pi["status"] == "succeeded"
    assert page.locator("[data-payflow=challenge]").count() == 0
    assert page.console_errors == []


def test_3d_secure_failed_in_a_modal(page: Any, shop: Any, api: Api) -> None:
    frame = _open(page, shop)
    _type_card(frame, "4000002500003155")
    page.click("#pay")
    _challenge(page, "#fail")
    text = _message(page, "authenticat")
    assert "authenticat" in text.lower()
    intents = api.get("/v1/payment_intents", params={"limit": 1}).json()["data"]
    assert intents[0]["status"] == "requires_payment_method"
    assert intents[0]["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_3d_secure_by_redirect_returns_to_the_shop(page: Any, shop: Any, api: Api) -> None:
    frame = _open(page, shop)
    page.select_option("#flow", "always")
    _type_card(frame, "4000002500003155")
    page.click("#pay")
    # The customer leaves for PayFlow's page, authenticates, and comes back to the return_url
    page.wait_for_url(re.compile(r"/v1/sandbox/payment_intents/.*/authenticate"))
    page.click("#complete")
    page.wait_for_url(re.compile(r"/complete\?"), timeout=TIMEOUT_MS)
    assert "redirect_status=succeeded" in page.url
    assert page.get_attribute("#status", "data-status") == "succeeded"


def test_the_modal_checkout(page: Any, shop: Any, api: Api) -> None:
    page.goto(shop.url + "/")
    page.click("#modal")
    modal = page.locator("[data-payflow=checkout]")
    modal.locator(".pay").filter(has_text="€20.00").wait_for(timeout=TIMEOUT_MS)
    frame = page.frame_locator("[data-payflow=checkout] iframe")
    # A decline stays in the modal, the customer tries another card
    _type_card(frame, "4000000000000002")
    modal.locator(".pay").click()
    modal.locator(".error").filter(has_text="declined").wait_for(timeout=TIMEOUT_MS)
    screenshot(page, "checkout-modal")
    _type_card(frame, NUMBER)
    modal.locator(".pay").click()
    text = _message(page, "Payment succeeded")
    assert modal.count() == 0
    assert api.get(f"/v1/payment_intents/{_intent_id(text)}").json()["status"] == "succeeded"


def test_no_card_number_reaches_the_merchant(page: Any, shop: Any) -> None:
    # Given every request the page makes, and every message its window receives
    requests: list[Any] = []
    page.on("request", lambda request: requests.append(request))
    already = len(shop.received)
    frame = _open(page, shop)
    page.evaluate(
        "window.__seen = []; addEventListener('message', e => __seen.push(JSON.stringify(e.data)))"
    )
    # When the customer pays, once declined and once through 3-D Secure
    # (numbers the shop's test-card list does not show, so the page cannot hold them)
    _type_card(frame, "4000000000000127", cvc="737")
    page.click("#pay")
    _message(page, "security code")
    _type_card(frame, "4000002760003184", cvc="737")
    page.click("#pay")
    _challenge(page, "#complete")
    _message(page, "succeeded")
    # Then the number and CVC are nowhere in the merchant's page, its server or its messages
    secrets = ["4000000000000127", "4000 0000 0000 0127", "4000002760003184", "737"]
    dom = page.content()
    seen = page.evaluate("window.__seen")
    to_shop = [r for r in requests if r.url.startswith(shop.url)]
    received = shop.received[already:]
    assert to_shop and received and seen
    for secret in secrets:
        assert not _holds(dom, secret)
        assert not [m for m in seen if _holds(m, secret)], secret
        for request in to_shop:
            assert not _holds(request.url + (request.post_data or ""), secret)
        for got in received:
            headers = {k: v for k, v in got.headers.items() if k.lower() != "content-length"}
            assert not _holds(got.path + got.body + json.dumps(headers), secret)
    # and card details went only to PayFlow, from PayFlow's own frame
    api_origin = shop.api
    carrying = [r for r in requests if "card%5Bnumber%5D" in (r.post_data or "")]
    assert carrying and all(r.url.startswith(api_origin) for r in carrying)
    assert all(r.frame.url.startswith(api_origin + "/js/v1/elements.html") for r in carrying)


def test_confirm_setup_saves_a_card_after_3d_secure(page: Any, shop: Any, api: Api) -> None:
    # Given a SetupIntent the server made for a customer, and payflow.js on the shop's page
    customer = api.post("/v1/customers", data={"email": "saver@example.com"}).json()
    si = api.post("/v1/setup_intents", data={"customer": customer["id"]}).json()
    page.goto(shop.url + "/")
    page.evaluate(
        """([key, api, secret]) => {
            const box = document.createElement("div");
            box.id = "setup-element";
            document.body.prepend(box);
            const payflow = PayFlow(key, { apiBase: api });
            window.setupElements = payflow.elements({ clientSecret: secret });
            window.setupElements.create("payment").mount("#setup-element");
            window.saveCard = () => payflow.confirmSetup({
                elements: window.setupElements, redirect: "if_required" });
        }""",
        [shop.publishable_key, shop.api, si["client_secret"]],
    )
    frame = page.frame_locator("#setup-element iframe")
    # When the customer types a card that asks for 3-D Secure on setup, and passes it
    _type_card(frame, "4000002500003155")
    page.evaluate("() => { window.saving = window.saveCard(); }")
    challenge = page.frame_locator("[data-payflow=challenge] iframe")
    challenge.locator("#summary").filter(has_text="saved").wait_for(timeout=TIMEOUT_MS)
    challenge.locator("#complete").click()
    result = page.evaluate("() => window.saving")
    # Then the SetupIntent succeeded and the card is the customer's
    assert result["setupIntent"]["status"] == "succeeded", result
    saved = api.get(f"/v1/customers/{customer['id']}/payment_methods").json()["data"]
    assert [m["card"]["last4"] for m in saved] == ["3155"]


# -- UPI and PayFlow Wallet: the shop in rupees, payflow.js's UPI and wallet choices, and PayFlow's
# page for the customer (the QR code, the collect request, the wallet's approval). The outcome
# reaches the PaymentIntent by the simulator's own webhook, as a real PSP's would; the page
# follows it.


def _open_in_rupees(page: Any, shop: Any, method: str) -> Any:
    page.goto(shop.url + "/")
    page.wait_for_selector("#pay:not([disabled])", timeout=TIMEOUT_MS)
    page.select_option("#currency", "inr")
    page.locator("#price").filter(has_text="₹1,799.00").wait_for(timeout=TIMEOUT_MS)
    page.wait_for_selector("#pay:not([disabled])", timeout=TIMEOUT_MS)
    frame = page.frame_locator("#payment-element iframe")
    frame.locator(f".method[data-method={method}]").click()
    return frame


def _customer(page: Any) -> Any:
    """PayFlow's page for the customer, in the SDK's modal."""
    customer = page.frame_locator("[data-payflow=challenge] iframe")
    customer.locator("#approve:not([disabled])").wait_for(timeout=TIMEOUT_MS)
    return customer


def test_a_upi_qr_code_approved_in_the_app_succeeds(page: Any, shop: Any, api: Api) -> None:
    # Given the shop in rupees, UPI chosen, paying by QR code (the default)
    frame = _open_in_rupees(page, shop, "upi")
    assert frame.locator("#upi-intent").is_checked()
    page.click("#pay")

    # Then PayFlow's page shows the QR code, a upi://pay deep link and the time left
    customer = _customer(page)
    assert customer.locator("#title").text_content() == "Pay with UPI"
    assert "₹1,799.00" in str(customer.locator("#summary").text_content())
    assert customer.locator("#qr").is_visible()
    width = customer.locator("#qr").evaluate("img => img.decode().then(() => img.naturalWidth)")
    assert width > 0, "the QR code image loads"
    link = str(customer.locator("#deeplink").get_attribute("href"))
    assert re.match(r"upi://pay\?pa=payflow\.simulator%40upi&.*am=1799\.00&cu=INR", link), link
    assert re.match(r"Expires in (10:00|9:5\d)", str(customer.locator("#expiry").text_content()))
    screenshot(page, "checkout-upi-qr")

    # When the customer approves in their UPI app
    customer.locator("#approve").click()

    # Then the simulator's webhook makes the payment succeed, and the shop says so
    text = _message(page, "Payment succeeded")
    pi = api.get(f"/v1/payment_intents/{_intent_id(text)}").json()
    assert (pi["status"], pi["amount_received"], pi["currency"]) == ("succeeded", 179900, "inr")
    assert api.get(f"/v1/payment_methods/{pi['payment_method']}").json()["type"] == "upi"
    assert page.locator("[data-payflow=challenge]").count() == 0
    assert page.console_errors == []


def test_a_refused_collect_request_shows_the_customers_decline(page: Any, shop: Any) -> None:
    frame = _open_in_rupees(page, shop, "upi")
    frame.locator("#upi-collect").check()
    # A UPI ID is checked as it is typed, and before anything is sent
    frame.locator("#vpa").fill("cust omer")
    assert "letters, digits" in str(frame.locator("#upi-error").text_content())
    frame.locator("#vpa").fill("customer")
    page.click("#pay")
    assert "@" in _message(page, "UPI ID")
    frame.locator("#vpa").fill("customer@okaxis")
    assert frame.locator("#upi-error").text_content() == ""
    page.click("#pay")

    customer = _customer(page)
    assert customer.locator("#title").text_content() == "Approve in your UPI app"
    screenshot(page, "checkout-upi-collect")
    customer.locator("#refuse").click()

    assert "declined the UPI collect request" in _message(page, "declined")
    screenshot(page, "checkout-upi-refused")
    assert page.console_errors == []


def test_a_collect_request_nobody_answers_expires(
    page: Any, shop: Any, business_clock: Any
) -> None:
    frame = _open_in_rupees(page, shop, "upi")
    frame.locator("#upi-collect").check()
    frame.locator("#vpa").fill("silent@okhdfc")
    page.click("#pay")
    _customer(page)

    # When the business clock passes the request's 480 seconds
    business_clock(481)

    # Then the simulator expires it and the shop tells the customer
    assert "before it expired" in _message(page, "expired")
    assert page.locator("[data-payflow=challenge]").count() == 0


def test_the_wallet_approves_on_its_page_by_redirect(page: Any, shop: Any, api: Api) -> None:
    frame = _open_in_rupees(page, shop, "wallet")
    assert frame.locator("#wallet").is_visible()
    page.select_option("#flow", "always")
    page.click("#pay")

    # The customer is sent to the wallet's approval page on PayFlow's origin
    page.wait_for_url(re.compile(r"/customer_action\?"), timeout=TIMEOUT_MS)
    page.locator("#approve:not([disabled])").wait_for(timeout=TIMEOUT_MS)
    assert page.locator("#title").text_content() == "PayFlow Wallet"
    screenshot(page, "checkout-wallet")
    page.click("#approve")

    # and back to the shop, whose server reads the payment: succeeded
    page.wait_for_url(re.compile(r"/complete\?"), timeout=TIMEOUT_MS)
    assert page.locator("#status").get_attribute("data-status") == "succeeded"


def test_the_wallet_decline_is_shown_to_the_customer(page: Any, shop: Any) -> None:
    _open_in_rupees(page, shop, "wallet")
    page.click("#pay")
    _customer(page).locator("#refuse").click()
    assert "declined the payment on the wallet's page" in _message(page, "declined")
