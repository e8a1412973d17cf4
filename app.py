"""PayFlow's Chalice application: routes and Lambda entry points, nothing else.

Every route lives in a blueprint under chalicelib/api/; business rules live in
chalicelib/domain and chalicelib/services; only chalicelib/dal talks to AWS.

Every Lambda function imports this module, so it imports what registering the routes and
entry points needs and nothing more: each function's first call imports what it runs
(tests/unit/test_cold_start.py lists what `import app` may not load).
"""

from chalice import Chalice
from chalice.app import DynamoDBEvent, SQSEvent

from chalicelib.api.analytics import analytics
from chalicelib.api.charges import charges
from chalicelib.api.checkout import checkout
from chalicelib.api.connectors import connectors
from chalicelib.api.customers import customers
from chalicelib.api.dashboard import dashboard
from chalicelib.api.disputes import disputes
from chalicelib.api.docs import docs
from chalicelib.api.events import events
from chalicelib.api.graphql import graphql
from chalicelib.api.payment_intents import payment_intents
from chalicelib.api.psp_webhooks import psp_webhooks
from chalicelib.api.reconciliation import reconciliation
from chalicelib.api.refunds import refunds
from chalicelib.api.sandbox import sandbox
from chalicelib.api.setup_intents import setup_intents
from chalicelib.api.webhooks import webhook_endpoints
from chalicelib.container import analytics as analytics_service
from chalicelib.container import services, webhooks
from chalicelib.observability import handler as observed
from chalicelib.observability import payment_task_keys, sqs_keys, stream_keys

# Logs are Powertools' JSON lines (chalicelib/observability.py), on Chalice's "payflow" logger too.
app = Chalice(app_name="payflow", configure_logs=False)
app.register_blueprint(sandbox)
app.register_blueprint(payment_intents)
app.register_blueprint(connectors)
app.register_blueprint(docs)
app.register_blueprint(events)
app.register_blueprint(webhook_endpoints)
app.register_blueprint(refunds)
app.register_blueprint(disputes)
app.register_blueprint(customers)
app.register_blueprint(charges)
app.register_blueprint(setup_intents)
app.register_blueprint(checkout)
app.register_blueprint(psp_webhooks)
app.register_blueprint(dashboard)
app.register_blueprint(analytics)
app.register_blueprint(graphql)
app.register_blueprint(reconciliation)


# Tasks of the payment state machine (statemachines/payment.asl.json). Errors they raise are
# the connector errors whose class names the ASL's Retry and Catch name.


@app.lambda_function(name="authorize_payment")
@observed("authorize_payment", payment_task_keys)
def authorize_payment(event: dict, context: object) -> dict:
    return services().orchestrator.authorize(event)


@app.lambda_function(name="reconcile_payment")
@observed("reconcile_payment", payment_task_keys)
def reconcile_payment(event: dict, context: object) -> dict:
    return services().orchestrator.reconcile(event)


@app.lambda_function(name="finalize_payment")
@observed("finalize_payment", payment_task_keys)
def finalize_payment(event: dict, context: object) -> dict:
    return services().payment_intents.finalize_attempt(event)


# Webhooks (chalicelib/webhooks/). The decorators need literal sources at import; the real ones
# come from infra/resources.json, whose RelayEvents and DeliverWebhooks functions override these
# placeholders when merged into `chalice package` (and drive the sandbox's pollers), with
# ReportBatchItemFailures on.
_STREAM_PLACEHOLDER = (
    "arn:aws:dynamodb:us-east-1:000000000000:table/payflow-payments/stream/set-by-infra-resources"
)


@app.on_dynamodb_record(stream_arn=_STREAM_PLACEHOLDER, batch_size=100, starting_position="LATEST")
@observed("relay_events", stream_keys)
def relay_events(event: DynamoDBEvent) -> dict:
    """The outbox relay: new events -> one queued delivery per subscribed endpoint."""
    webhooks().relay.handle(record.to_dict() for record in event)
    return {"batchItemFailures": []}


@app.on_dynamodb_record(stream_arn=_STREAM_PLACEHOLDER, batch_size=100, starting_position="LATEST")
@observed("resume_payments", stream_keys)
def resume_payments(event: DynamoDBEvent) -> dict:
    """Recovery road: every PaymentIntent that enters processing gets its execution, even when
    the request that committed it died before starting it (StartExecution is idempotent)."""
    failed = services().payment_intents.resume_from_stream(r.to_dict() for r in event)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


@app.on_dynamodb_record(stream_arn=_STREAM_PLACEHOLDER, batch_size=100, starting_position="LATEST")
@observed("rollup_payments", stream_keys)
def rollup_payments(event: DynamoDBEvent) -> dict:
    """Analytics counters from each PSP call and refund, once each; then failure-spike alerts,
    announced through the outbox as payflow.connector.alert events."""
    analytics_service().handle(record.to_dict() for record in event)
    return {"batchItemFailures": []}


@app.on_sqs_message(queue="payflow-webhooks", batch_size=10)
@observed("deliver_webhooks", sqs_keys)
def deliver_webhooks(event: SQSEvent) -> dict:
    """Signed POSTs; failed messages stay queued for their next scheduled attempt."""
    keep = webhooks().deliverer.handle(record.to_dict() for record in event)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in keep]}


# Tasks of the refund saga (statemachines/refund.asl.json); each is safe to run twice.


@app.lambda_function(name="refund_hold")
def refund_hold(event: dict, context: object) -> dict:
    return services().refunds.hold(event)


@app.lambda_function(name="refund_at_psp")
def refund_at_psp(event: dict, context: object) -> dict:
    return services().refunds.refund_at_psp(event)


@app.lambda_function(name="refund_check")
def refund_check(event: dict, context: object) -> dict:
    return services().refunds.check_at_psp(event)


@app.lambda_function(name="refund_settle")
def refund_settle(event: dict, context: object) -> dict:
    return services().refunds.settle(event)


@app.lambda_function(name="refund_compensate")
def refund_compensate(event: dict, context: object) -> dict:
    return services().refunds.compensate(event)


# Tasks of the reconciliation workflow (statemachines/reconciliation.asl.json); each is safe to
# run twice.


@app.lambda_function(name="recon_prepare")
def recon_prepare(event: dict, context: object) -> dict:
    return services().reconciliation.prepare(event)


@app.lambda_function(name="recon_match")
def recon_match(event: dict, context: object) -> dict:
    return services().reconciliation.match_chunk(event)


@app.lambda_function(name="recon_finish")
def recon_finish(event: dict, context: object) -> dict:
    return services().reconciliation.finish(event)


@app.lambda_function(name="recon_fail")
def recon_fail(event: dict, context: object) -> dict:
    return services().reconciliation.fail(event)


@app.schedule("cron(30 2 * * ? *)", name="reconcile_daily")
def reconcile_daily(event: object) -> dict:
    """Every merchant's yesterday, reconciled once a day (runs named by merchant and day)."""
    return services().reconciliation.run_daily()


@app.schedule("rate(1 hour)", name="release_funds")
def release_funds(event: object) -> dict:
    """Pending funds whose available_on has passed become available, for every merchant."""
    return services().ledger.release_all_due()


@app.schedule("rate(1 minute)", name="simulator_tick")
def simulator_tick(event: object) -> dict:
    """The simulator PSP's own clock on AWS: expire due UPI and wallet customer actions and
    POST its pending webhooks to this stack's API (the sandbox's poller does it there)."""
    return services().simulator.tick()


@app.lambda_function(name="redrive_webhooks")
@observed("redrive_webhooks")
def redrive_webhooks(event: dict, context: object) -> dict:
    """Move dead-lettered webhook messages back to the queue: {"limit": 1000}."""
    from chalicelib.webhooks.delivery import report_dlq_depth

    moved = webhooks().queue.redrive(int(event.get("limit", 1000)))
    report_dlq_depth(webhooks().queue)
    return {"moved": moved}
