// The alert bar in the top bar: firing connector alerts (GET /v1/alerts), polled on every page.
// An alert is raised server-side (rollup_payments) and also sent as a payflow.connector.alert
// event to the merchant's webhooks; the dashboard only shows it.

import { List, api } from "../api";
import { h, mount, poll } from "../dom";

export interface ConnectorAlert {
  id: string;
  connector: string;
  status: "firing" | "resolved";
  created: number;
  resolved_at: number | null;
  success_rate: number;
  attempted: number;
  threshold: number;
  window_seconds: number;
}

export function startAlerts(el: HTMLElement): () => void {
  return poll(async () => {
    const alerts = await api.get<List<ConnectorAlert>>("/v1/alerts", { limit: 20 });
    // The newest alert per connector says whether it is still firing.
    const latest = new Map<string, ConnectorAlert>();
    for (const alert of alerts.data) if (!latest.has(alert.connector)) latest.set(alert.connector, alert);
    const firing = [...latest.values()].filter((a) => a.status === "firing");
    mount(
      el,
      firing.map((a) =>
        h(
          "a",
          { class: "alert-pill", href: "#/connectors", "data-alert": a.connector, title: `Success rate ${(a.success_rate * 100).toFixed(0)}% over ${a.attempted} calls in ${a.window_seconds / 60} min (threshold ${(a.threshold * 100).toFixed(0)}%)` },
          `⚠ ${a.connector}: ${(a.success_rate * 100).toFixed(0)}% success`,
        ),
      ),
    );
  }, 3000);
}
