"""Webhooks: from the outbox to the merchant's server.

    state change + Event item (one DynamoDB transaction, chalicelib/services)
      -> payments table stream -> relay (relay.py): one delivery + one SQS message per
         (event, subscribed endpoint), deduplicated by the delivery's deterministic id
      -> webhook queue -> delivery (delivery.py): signed POST (signing.py, sender.py), the
         retry schedule through the message's visibility timeout, the delivery log
      -> after the last attempt: the dead-letter queue, by the queue's own redrive policy.

Endpoints, the delivery log API, manual retry and resend live in endpoints.py. Rules are in
chalicelib/domain/webhooks.py, storage in chalicelib/dal/webhooks.py.
"""
