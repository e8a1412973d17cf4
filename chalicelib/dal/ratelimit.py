"""Per-key request counters shared by every instance, in their own table.

One item per (bucket, second): `pk` = `<bucket>#<epoch second>`, `n` = requests granted in that
second, `expires` = when DynamoDB's TTL may drop it. A grant is one conditional UpdateItem that
adds `tokens` only if the count stays within the limit, so two instances can never together
grant more than the limit, whatever their timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.dal.dynamo import error_code, from_attrs, to_attrs

KEEP_SECONDS = 120
"""How long a counter outlives its second (TTL): long enough for any late request."""


@dataclass(frozen=True)
class Grant:
    """What one conditional write gave: `tokens` (0: refused) and, on a refusal, the count the
    counter had, so a caller can ask once more for exactly what is left."""

    tokens: int
    count: int | None = None


class RateLimitStore:
    """Grants tokens from per-second counters with conditional writes."""

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def grant(self, bucket: str, second: int, tokens: int, limit: int) -> Grant:
        """Add `tokens` to the counter of `bucket` for `second` if it stays within `limit`;
        when they do not fit nothing is written and the counter's value comes back (ALL_OLD)."""
        try:
            self._client.update_item(
                TableName=self._table,
                Key=to_attrs({"pk": f"{bucket}#{second}"}),
                UpdateExpression="ADD n :tokens SET expires = if_not_exists(expires, :expires)",
                ConditionExpression="attribute_not_exists(n) OR n <= :room",
                ExpressionAttributeValues=to_attrs(
                    {
                        ":tokens": tokens,
                        ":room": limit - tokens,
                        ":expires": second + KEEP_SECONDS,
                    }
                ),
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            old = from_attrs(error.response.get("Item") or {})
            return Grant(0, int(old.get("n", limit)))
        return Grant(tokens)

    def used(self, bucket: str, second: int) -> int:
        """How many tokens the counter granted in `second` (for tests and operators)."""
        response = self._client.get_item(
            TableName=self._table,
            Key=to_attrs({"pk": f"{bucket}#{second}"}),
            ConsistentRead=True,
        )
        return int(from_attrs(response.get("Item") or {}).get("n", 0))
