"""PayFlow's Chalice application: routes and Lambda entry points, nothing else.

Every route lives in a blueprint under chalicelib/api/; business rules live in
chalicelib/domain and chalicelib/services; only chalicelib/dal talks to AWS.
"""

from chalice import Chalice
from chalice.app import DynamoDBEvent, SQSEvent

from chalicelib.api.connectors import connectors
from chalicelib.api.docs import docs
from chalicelib.api.events import events
from chalicelib.api.payment_intents import payment_intents
from chalicelib.api.sandbox import sandbox
from chalicelib.api.webhooks import webhook_endpoints
from chalicelib.container import services, webhooks

app = Chalice(app_name="payflow")
app.register_blueprint(sandbox)
app.register_blueprint(payment_intents)
app.register_blueprint(connectors)
app.register_blueprint(docs)
app.register_blueprint(events)
app.register_blueprint(webhook_endpoints)


# Tasks of the payment state machine (statemachines/payment.asl.json). Errors they raise are
# the connector errors whose class names the ASL's Retry and Catch name.


@app.lambda_function(name="authorize_payment")
def authorize_payment(event: dict, context: object) -> dict:
    return services().orchestrator.authorize(event)


@app.lambda_function(name="reconcile_payment")
def reconcile_payment(event: dict, context: object) -> dict:
    return services().orchestrator.reconcile(event)


@app.lambda_function(name="finalize_payment")
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
def relay_events(event: DynamoDBEvent) -> dict:
    """The outbox relay: new events -> one queued delivery per subscribed endpoint."""
    webhooks().relay.handle(record.to_dict() for record in event)
    return {"batchItemFailures": []}


@app.on_dynamodb_record(stream_arn=_STREAM_PLACEHOLDER, batch_size=100, starting_position="LATEST")
def resume_payments(event: DynamoDBEvent) -> dict:
    """Recovery road: every PaymentIntent that enters processing gets its execution, even when
    the request that committed it died before starting it (StartExecution is idempotent)."""
    failed = services().payment_intents.resume_from_stream(r.to_dict() for r in event)
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}


@app.on_sqs_message(queue="payflow-webhooks", batch_size=10)
def deliver_webhooks(event: SQSEvent) -> dict:
    """Signed POSTs; failed messages stay queued for their next scheduled attempt."""
    keep = webhooks().deliverer.handle(record.to_dict() for record in event)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in keep]}


@app.lambda_function(name="redrive_webhooks")
def redrive_webhooks(event: dict, context: object) -> dict:
    """Move dead-lettered webhook messages back to the queue: {"limit": 1000}."""
    return {"moved": webhooks().queue.redrive(int(event.get("limit", 1000)))}
