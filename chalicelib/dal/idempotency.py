"""Idempotency records in their own table, claimed and completed with conditional writes.

Item: `pk` = `<merchant id>#<key>`, `status` (in_progress | completed), `fingerprint`,
`lease_token` and `lease_expires_ms` (who owns an in-progress key, until when), `object_id`
(the id reserved for what the request creates), `expires_at` (epoch seconds; the table's TTL
attribute, 24 h after the first claim), `response_status` and `response_z` (the body, packed by
dal.dynamo.pack; `response_body`, plain JSON, in records written before) once completed.

Round trips: a claim is one UpdateItem. When the key is taken, the failed condition returns the
existing record (ReturnValuesOnConditionCheckFailure=ALL_OLD), so a replay costs that one call.
A completion rides in the same TransactWriteItems as the object it describes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import WriteBatch, error_code, from_attrs, pack, to_attrs, unpack
from chalicelib.domain.idempotency import (
    Claim,
    Record,
    RecordStatus,
    StoredResponse,
    judge_existing,
)

_CLAIMABLE = (
    "attribute_not_exists(pk) OR (#s = :ip AND lease_expires_ms < :now AND fingerprint = :fp)"
)


class IdempotencyStore:
    """Claims, completes and replays Idempotency-Keys."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        *,
        ttl_seconds: int = 86_400,
        lease_ms: int = 60_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table_name
        self._ttl = ttl_seconds
        self._lease_ms = lease_ms
        self._clock = clock

    def claim(
        self, scope: str, key: str, fingerprint: str, object_id: str
    ) -> Claim | StoredResponse:
        """Own `key` for this request (a Claim) or learn the stored response to replay.

        Raises IdempotencyError for other parameters, IdempotencyKeyInUse while another request
        holds a live lease.
        """
        now_ms = int(self._clock() * 1000)
        token = uuid.uuid4().hex
        pk = f"{scope}#{key}"
        try:
            response = self._client.update_item(
                TableName=self._table,
                Key=to_attrs({"pk": pk}),
                UpdateExpression=(
                    "SET #s = :ip, fingerprint = :fp, lease_token = :token, "
                    "lease_expires_ms = :lease, expires_at = if_not_exists(expires_at, :exp), "
                    "object_id = if_not_exists(object_id, :oid)"
                ),
                ConditionExpression=_CLAIMABLE,
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues=to_attrs(
                    {
                        ":ip": RecordStatus.IN_PROGRESS.value,
                        ":fp": fingerprint,
                        ":token": token,
                        ":lease": now_ms + self._lease_ms,
                        ":exp": now_ms // 1000 + self._ttl,
                        ":oid": object_id,
                        ":now": now_ms,
                    }
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            existing = from_attrs(error.response.get("Item", {}))
            if not existing:
                # The record vanished between the check and the answer (a release): try again.
                return self.claim(scope, key, fingerprint, object_id)
            record = self._record(existing)
            if record.expires_at <= now_ms // 1000:
                return self._replace_expired(pk, scope, key, fingerprint, object_id, record)
            return judge_existing(record, key, fingerprint)
        stored = from_attrs(response["Attributes"])
        return Claim(
            scope=scope,
            key=key,
            token=token,
            object_id=stored["object_id"],
            taken_over=stored["object_id"] != object_id,
        )

    def _replace_expired(
        self, pk: str, scope: str, key: str, fingerprint: str, object_id: str, old: Record
    ) -> Claim | StoredResponse:
        # TTL deletion is lazy (and moto never deletes): an expired record counts as absent.
        now_ms = int(self._clock() * 1000)
        token = uuid.uuid4().hex
        try:
            self._client.put_item(
                TableName=self._table,
                Item=to_attrs(
                    {
                        "pk": pk,
                        "status": RecordStatus.IN_PROGRESS.value,
                        "fingerprint": fingerprint,
                        "lease_token": token,
                        "lease_expires_ms": now_ms + self._lease_ms,
                        "expires_at": now_ms // 1000 + self._ttl,
                        "object_id": object_id,
                    }
                ),
                ConditionExpression="expires_at = :old",
                ExpressionAttributeValues=to_attrs({":old": old.expires_at}),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            # Someone else replaced it first: treat their fresh record like any other.
            return self.claim(scope, key, fingerprint, object_id)
        return Claim(scope=scope, key=key, token=token, object_id=object_id)

    def add_completion(self, batch: WriteBatch, claim: Claim, response: StoredResponse) -> None:
        """Complete `claim` with `response` in the same transaction as the rest of `batch`."""
        batch.add("idempotency", {"Update": self._completion(claim, response)})

        def mark() -> None:
            claim.completed = True

        batch.on_commit.append(mark)

    def complete(self, claim: Claim, response: StoredResponse) -> bool:
        """Complete `claim` on its own (for results that wrote nothing else). False when the
        lease was lost to another request in the meantime."""
        try:
            self._client.update_item(**self._completion(claim, response))
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        claim.completed = True
        return True

    def _completion(self, claim: Claim, response: StoredResponse) -> dict[str, Any]:
        return {
            "TableName": self._table,
            "Key": to_attrs({"pk": f"{claim.scope}#{claim.key}"}),
            "UpdateExpression": (
                "SET #s = :done, response_status = :status, response_z = :body "
                "REMOVE lease_token, lease_expires_ms"
            ),
            "ConditionExpression": "lease_token = :token",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": to_attrs(
                {
                    ":done": RecordStatus.COMPLETED.value,
                    ":status": response.status,
                    # Compressed: the body is replayed whole, never queried, and most of the
                    # record; packed it fits the record in one write unit (two in a
                    # transaction) instead of two (four).
                    ":body": pack(response.body),
                    ":token": claim.token,
                }
            ),
        }

    @staticmethod
    def _record(item: dict[str, Any]) -> Record:
        response = None
        if item.get("status") == RecordStatus.COMPLETED.value:
            body = (
                unpack(item["response_z"])
                if "response_z" in item
                else json.loads(item["response_body"])  # stored before bodies were packed
            )
            response = StoredResponse(status=int(item["response_status"]), body=body)
        return Record(
            status=RecordStatus(item["status"]),
            fingerprint=item["fingerprint"],
            lease_expires_ms=int(item.get("lease_expires_ms", 0)),
            expires_at=int(item["expires_at"]),
            response=response,
        )

    def release(self, claim: Claim) -> None:
        """Give up `claim` without a result (the request lost a race and stored nothing)."""
        try:
            self._client.delete_item(
                TableName=self._table,
                Key=to_attrs({"pk": f"{claim.scope}#{claim.key}"}),
                ConditionExpression="lease_token = :token",
                ExpressionAttributeValues=to_attrs({":token": claim.token}),
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
