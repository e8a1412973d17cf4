// The dashboard's shell: sign-in, navigation and a hash router (#/payments, #/payments/pi_...,
// #/disputes[/du_...], #/reconciliation (runs/rcnrun_..., exceptions/rcx_...), #/webhooks,
// #/connectors, #/analytics). Each page renders into the main element and returns
// how to stop (its polling timers), which the router calls before the next page.

import "./style.css";
import { keys } from "./api";
import { h, mount } from "./dom";
import { renderSignIn } from "./pages/signin";
import { renderPayments } from "./pages/payments";
import { renderPayment } from "./pages/payment";
import { renderWebhooks } from "./pages/webhooks";
import { renderConnectors } from "./pages/connectors";
import { renderAnalytics } from "./pages/analytics";
import { renderDispute, renderDisputes } from "./pages/disputes";
import { renderException, renderReconciliation, renderRun } from "./pages/reconciliation";
import { startAlerts } from "./pages/alerts";

export type Stop = () => void;
type Page = (main: HTMLElement, arg: string) => Stop | void;

const routes: [RegExp, Page, string][] = [
  [/^\/payments\/(pi_[A-Za-z0-9_]+)$/, renderPayment, "payments"],
  [/^\/payments$/, renderPayments, "payments"],
  [/^\/disputes\/(du_[A-Za-z0-9_]+)$/, renderDispute, "disputes"],
  [/^\/disputes$/, renderDisputes, "disputes"],
  [/^\/reconciliation\/runs\/(rcnrun_[A-Za-z0-9_]+)$/, renderRun, "reconciliation"],
  [/^\/reconciliation\/exceptions\/(rcx_[A-Za-z0-9_]+)$/, renderException, "reconciliation"],
  [/^\/reconciliation$/, renderReconciliation, "reconciliation"],
  [/^\/webhooks$/, renderWebhooks, "webhooks"],
  [/^\/connectors$/, renderConnectors, "connectors"],
  [/^\/analytics$/, renderAnalytics, "analytics"],
];

const app = document.getElementById("app") as HTMLElement;
let stopPage: Stop | void;
let stopAlerts: Stop | undefined;

function nav(current: string): HTMLElement {
  const link = (name: string, title: string) =>
    h("a", { href: `#/${name}`, class: name === current ? "active" : null, "data-nav": name }, title);
  return h(
    "header",
    { class: "topbar" },
    h("span", { class: "brand" }, "PayFlow"),
    h("span", { class: "mode" }, "test mode"),
    h("nav", {}, link("payments", "Payments"), link("disputes", "Disputes"), link("reconciliation", "Reconciliation"), link("webhooks", "Webhooks"), link("connectors", "Connectors"), link("analytics", "Analytics")),
    h("span", { id: "alerts", class: "alerts" }),
    h("button", { type: "button", class: "link", id: "sign-out", onclick: signOut }, "Sign out"),
  );
}

function signOut(): void {
  keys.clear();
  location.hash = "#/payments";
  route();
}

function route(): void {
  if (stopPage) stopPage();
  stopPage = undefined;
  if (!keys.secret()) {
    stopAlerts?.();
    stopAlerts = undefined;
    mount(app, renderSignIn(route));
    return;
  }
  const path = location.hash.replace(/^#/, "") || "/payments";
  const match = routes.map(([pattern, page, section]) => [pattern.exec(path), page, section] as const).find(([m]) => m);
  if (!match) {
    location.hash = "#/payments";
    return;
  }
  const [found, page, section] = match;
  const main = h("main", { id: "main" });
  mount(app, nav(section), main);
  stopAlerts?.();
  stopAlerts = startAlerts(document.getElementById("alerts") as HTMLElement);
  stopPage = page(main, found?.[1] ?? "");
}

window.addEventListener("hashchange", route);
route();
