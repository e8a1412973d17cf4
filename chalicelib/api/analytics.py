"""/v1/analytics, /v1/alerts and /v1/alert_settings: PayFlow's own reports over a merchant's PSP
calls, and its failure-spike alerts (Stripe has no such API; the shapes follow its lists)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint

from chalicelib.api.http import ANY_CONTENT_TYPE, ApiCall, endpoint
from chalicelib.container import analytics as analytics_service

# Annotations only: the models are imported by the requests that use them.
if TYPE_CHECKING:
    from chalicelib.api import params as p

analytics = Blueprint(__name__)
bp = analytics


@bp.route("/v1/analytics", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="AnalyticsReport")
def analytics_report(call: ApiCall) -> dict:
    """Success rate over time by connector and by method, latency percentiles per connector,
    decline and failure reasons, volume and refunds, over `created` (default: the last day)."""
    params: p.AnalyticsReport = call.params
    low, high = params.created.bounds() if params.created else (None, None)
    return analytics_service().report(call.merchant_id, low, high, params.interval)


@bp.route("/v1/alerts", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="ListAlerts")
def list_alerts(call: ApiCall) -> dict:
    """The merchant's connector alerts, newest first, firing or resolved."""
    return analytics_service().alerts(call.merchant_id, call.params.limit)


@bp.route("/v1/alert_settings", methods=["GET"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="Params")
def retrieve_alert_settings(call: ApiCall) -> dict:
    return analytics_service().alert_settings(call.merchant_id)


@bp.route("/v1/alert_settings", methods=["POST"], content_types=ANY_CONTENT_TYPE)
@endpoint(bp, params="UpdateAlertSettings")
def update_alert_settings(call: ApiCall) -> dict:
    """Change the failure-spike rule: `threshold` (0-1), `window_seconds` (60-3600, whole
    minutes), `minimum_calls`, `enabled`."""
    return analytics_service().set_alert_settings(call.merchant_id, call.params.changes())
