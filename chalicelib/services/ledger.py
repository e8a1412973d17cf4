"""Balances and balance transactions as merchants read them, releases of pending funds, and
the check that recomputes every balance from its postings."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit
from chalicelib.dal.ledger import LedgerStore
from chalicelib.domain import ledger as ledger_rules
from chalicelib.domain.ledger import AVAILABLE, PENDING, JournalEntry
from chalicelib.errors import ResourceMissing


@dataclass
class LedgerReport:
    """What `check` found: entries that do not balance, and balances that drifted."""

    entries: int = 0
    unbalanced: list[str] = field(default_factory=list)
    drift: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unbalanced and not self.drift


class LedgerService:
    """Reads the ledger for merchants and keeps it honest."""

    def __init__(
        self, store: LedgerStore, client: Any, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._client = client
        self._clock = clock

    def balance(self, merchant_id: str) -> dict[str, Any]:
        """Stripe's balance object: available and pending per currency."""
        available, pending = [], []
        for currency, accounts in sorted(self._store.balances(merchant_id).items()):
            available.append(
                {
                    "amount": -accounts.get(AVAILABLE, 0),
                    "currency": currency,
                    "source_types": {"card": -accounts.get(AVAILABLE, 0)},
                }
            )
            pending.append(
                {
                    "amount": -accounts.get(PENDING, 0),
                    "currency": currency,
                    "source_types": {"card": -accounts.get(PENDING, 0)},
                }
            )
        return {"object": "balance", "available": available, "pending": pending, "livemode": False}

    def transactions(self, merchant_id: str, **filters: Any) -> dict[str, Any]:
        page = self._store.transactions(merchant_id, **filters)
        return {
            "object": "list",
            "data": page.items,
            "has_more": page.has_more,
            "url": "/v1/balance_transactions",
        }

    def transaction(self, merchant_id: str, txn_id: str) -> dict[str, Any]:
        found = self._store.transaction(merchant_id, txn_id)
        if found is None:
            raise ResourceMissing(f"No such balance transaction: '{txn_id}'", param="id")
        return found

    def release_due(self, merchant_id: str) -> dict[str, Any]:
        """Make every pending charge whose available_on has passed available (idempotent: the
        release entry's id is derived from the charge's)."""
        now = int(self._clock())
        released = 0
        for entry in self._store.pending_charges(merchant_id):
            if entry.available_on > now:
                continue
            batch = WriteBatch()
            self.post_release(batch, entry, now)
            try:
                commit(self._client, batch)
            except ConditionFailed:
                continue
            released += 1
        return {
            "object": "balance_release",
            "released": released,
            "balance": self.balance(merchant_id),
        }

    def release_all_due(self) -> dict[str, Any]:
        merchants = sorted({entry.merchant_id for entry in self._store.pending_charges(None)})
        released = sum(self.release_due(m)["released"] for m in merchants)
        return {"released": released, "merchants": len(merchants)}

    def post_release(self, batch: WriteBatch, charge: JournalEntry, now: int) -> None:
        self._store.add(batch, ledger_rules.release(charge, now))
        self._store.set_transaction_status(batch, charge, "available")

    def check(self, merchant_id: str | None = None) -> LedgerReport:
        """Recompute every balance (of one merchant, or of all) from the postings and compare it
        with the materialized one."""
        if merchant_id is None:
            entries, materialized = self._store.everything()
        else:
            entries, materialized = self._store.of_merchant(merchant_id)
        report = LedgerReport(entries=len(entries))
        for entry in entries:
            if sum(p.amount for p in entry.postings) != 0:
                report.unbalanced.append(entry.id)
        recomputed = ledger_rules.sums(entries)
        for key in sorted(set(recomputed) | set(materialized)):
            expected, found = recomputed.get(key, 0), materialized.get(key, 0)
            if expected != found:
                merchant, currency, account = key
                report.drift.append(
                    {
                        "merchant": merchant,
                        "currency": currency,
                        "account": account,
                        "postings": expected,
                        "materialized": found,
                    }
                )
        return report
