"""Reconciliation: runs started through the API (or the daily schedule), the three tasks of
the workflow (statemachines/reconciliation.asl.json), exceptions and their resolution.

- `prepare`: read each connector's settlement report of the day and the bank's statement,
  store the lines in chunks; the workflow's Map fans out over them.
- `match_chunk`: each line against PayFlow's charge or refund by provider reference, or its
  dispute's withdrawal or reinstatement by the provider's dispute id; fees booked, exceptions
  recorded (each with its event), repairs made where certain.
- `finish`: PayFlow's bookings of the day (dispute movements included) that no line settled
  (past the SLA), every provider's payouts against the bank (three-way: the simulators' own
  bank and the statements the merchant uploaded, `upload_statement`), the run's counts.

Every task is safe to run twice: settled markers, exceptions and ledger entries have ids
derived from what caused them and are written on condition they are new.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.connectors.base import ConnectorError, RefundRefused
from chalicelib.dal.dynamo import ConditionFailed, WriteBatch, commit
from chalicelib.dal.ledger import LedgerStore
from chalicelib.dal.objects import ObjectStore
from chalicelib.dal.reconciliation import ReconciliationStore
from chalicelib.domain import ledger as entries
from chalicelib.domain.disputes import Dispute
from chalicelib.domain.ids import new_id
from chalicelib.domain.routing import ConnectorKind
from chalicelib.errors import (
    InvalidRequestError,
    ParameterInvalid,
    PayFlowError,
    ResourceMissing,
    StaleWrite,
    UnexpectedState,
)
from chalicelib.reconciliation import EXCEPTION_EVENT
from chalicelib.reconciliation.bank import StatementFormat, StatementInvalid, parse_statement
from chalicelib.reconciliation.matching import (
    BankView,
    Booked,
    ExceptionKind,
    ExceptionStatus,
    Finding,
    Repair,
    Resolution,
    dispute_occurrence,
    dispute_subject,
    dispute_subjects,
    in_occurrence_order,
    match_bank,
    match_row,
    missing_at_provider,
    unmatched_credits,
    window_of,
)
from chalicelib.reconciliation.records import (
    BankStatement,
    ReconciliationException,
    ReconciliationRun,
    RunStatus,
)
from chalicelib.reconciliation.reports import (
    BankLine,
    DisputeMovement,
    Payout,
    RowType,
    SettlementRow,
    day_of,
    payouts_of,
    read_simulator,
    write_bank_statement,
    write_simulator,
)
from chalicelib.services.context import Outcome, RequestContext, add_event, fetch, list_body

if TYPE_CHECKING:
    from chalicelib.connectors.registry import ConnectorRegistry
    from chalicelib.connectors.simulator_settlement import Discrepancy, SimulatorSettlement
    from chalicelib.dal.workflows import PaymentWorkflows
    from chalicelib.services.context import Committer
    from chalicelib.services.disputes import DisputeService
    from chalicelib.services.payment_intents import PaymentIntentService

DEFAULT_SLA_DAYS = 3
"""How long a booking may wait for its settlement before it is missing at the provider (T+3)."""
UNEXPECTED_STATE = "reconciliation_exception_unexpected_state"
RUN = "reconciliation_run"
EXCEPTION = "reconciliation_exception"
STATEMENT = "bank_statement"
BANK = "bank"
"""The `provider` of the settled markers that say which payout a bank credit carried."""
NO_LEDGER_MOVE = frozenset(
    {ExceptionKind.PAYOUT_MATCH_AMBIGUOUS, ExceptionKind.BANK_CREDIT_UNMATCHED}
)
"""Bank exceptions a person closes without a ledger entry: the money is at the bank, and
PayFlow booked nothing wrong (which credit is which payout is what the person decides)."""
CHUNK_SIZE = 250
"""Lines per Map iteration: one task matches them with one batch read of PayFlow's records."""


class ReconciliationService:
    """Runs, their workflow's tasks, and exceptions."""

    def __init__(
        self,
        objects: ObjectStore,
        store: ReconciliationStore,
        committer: Committer,
        ledger: LedgerStore,
        registry: ConnectorRegistry,
        settlement: SimulatorSettlement,
        workflows: PaymentWorkflows,
        payment_intents: Callable[[], PaymentIntentService],
        client: Any,
        *,
        disputes: Callable[[], DisputeService],
        merchant_ids: Callable[[], list[str]] = list,
        sandbox: bool = False,
        chunk_size: int = CHUNK_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._objects = objects
        self._store = store
        self._committer = committer
        self._ledger = ledger
        self._registry = registry
        self._settlement = settlement
        self._workflows = workflows
        self._payment_intents = payment_intents
        self._client = client
        self._disputes = disputes
        self._merchant_ids = merchant_ids
        self._sandbox = sandbox
        self._chunk_size = chunk_size
        self._clock = clock

    # -- the API ---------------------------------------------------------------------------

    def start(self, merchant_id: str, ctx: RequestContext, *, date: str, sla_days: int) -> Outcome:
        """Create a run for `date` and start its workflow (named by the run: idempotent)."""
        run_id = ctx.claim.object_id if ctx.claim else new_id("rcnrun")
        run = self._start(merchant_id, run_id, date, sla_days, ctx)
        return Outcome(200, run.to_api())

    def run_daily(self, sla_days: int = DEFAULT_SLA_DAYS) -> dict[str, Any]:
        """Yesterday's run for every merchant, named by merchant and day (the schedule may fire
        twice: the second finds the same runs)."""
        yesterday = day_of(int(self._clock()) - 86_400)
        merchants = self._merchant_ids()
        for merchant_id in merchants:
            run_id = f"rcnrun_{merchant_id}_{yesterday.replace('-', '')}"
            self._start(merchant_id, run_id, yesterday, sla_days, RequestContext(request_id=None))
        return {"date": yesterday, "runs": len(merchants)}

    def _start(
        self, merchant_id: str, run_id: str, date: str, sla_days: int, ctx: RequestContext
    ) -> ReconciliationRun:
        if self._objects.get(RUN, merchant_id, run_id) is None:
            run = ReconciliationRun(
                id=run_id,
                merchant_id=merchant_id,
                date=date,
                sla_days=sla_days,
                created=int(self._clock()),
            )
            batch = WriteBatch()
            self._objects.put_new(batch, RUN, run, status=run.status.value)
            # Created meanwhile (the same request's retry, the schedule firing twice): that one.
            with contextlib.suppress(StaleWrite):
                self._committer.commit(ctx, batch, Outcome(200, run.to_api()), complete=False)
        self._workflows.start(run_id, {"run_id": run_id, "merchant_id": merchant_id})
        return self.retrieve_run(merchant_id, run_id)

    def retrieve_run(self, merchant_id: str, run_id: str) -> ReconciliationRun:
        return fetch(self._objects, RUN, ReconciliationRun, merchant_id, run_id, param="run")

    def list_runs(self, merchant_id: str, **page: Any) -> dict[str, Any]:
        return list_body(
            self._objects,
            RUN,
            ReconciliationRun,
            merchant_id,
            "/v1/reconciliation/runs",
            **page,
        )

    def upload_statement(
        self,
        merchant_id: str,
        ctx: RequestContext,
        *,
        file: str,
        fmt: StatementFormat | None,
    ) -> Outcome:
        """Keep an uploaded bank statement. The same statement again (its bank's statement id
        and account, or for a CSV its content) answers the one kept, never a second copy;
        other content under a statement id already uploaded is refused."""
        try:
            parsed = parse_statement(file, fmt)
        except StatementInvalid as error:
            raise ParameterInvalid(str(error), param="file") from None
        name = hashlib.sha256(parsed.key.encode()).hexdigest()
        existing = self._store.statement_named(merchant_id, name)
        if existing is None:
            statement = BankStatement(
                id=ctx.claim.object_id if ctx.claim else new_id("bstmt"),
                merchant_id=merchant_id,
                created=int(self._clock()),
                format=parsed.format,
                statement_ids=parsed.statement_ids,
                account=parsed.account,
                period_start=parsed.period_start,
                period_end=parsed.period_end,
                sha256=parsed.sha256,
                skipped=parsed.skipped,
                lines=parsed.lines,
            )
            batch = WriteBatch()
            self._objects.put_new(batch, STATEMENT, statement)
            self._store.name_statement(batch, merchant_id, name, statement.id)
            try:
                return self._committer.commit(ctx, batch, Outcome(200, statement.to_api()))
            except StaleWrite:
                existing = self._store.statement_named(merchant_id, name)
                if existing is None:
                    raise
        kept = self.retrieve_statement(merchant_id, existing)
        if kept.sha256 != parsed.sha256:
            raise InvalidRequestError(
                f"Statement {', '.join(parsed.statement_ids)} was uploaded before with other "
                f"content ({kept.id}); PayFlow keeps the first.",
                param="file",
                code="resource_already_exists",
            )
        return Outcome(200, kept.to_api())

    def retrieve_statement(self, merchant_id: str, statement_id: str) -> BankStatement:
        return fetch(
            self._objects, STATEMENT, BankStatement, merchant_id, statement_id, param="statement"
        )

    def list_statement_entries(
        self, merchant_id: str, statement_id: str, **page: Any
    ) -> dict[str, Any]:
        """A page of one statement's entries, in the statement's order."""
        return self.retrieve_statement(merchant_id, statement_id).entries_page(**page)

    def list_statements(self, merchant_id: str, **page: Any) -> dict[str, Any]:
        return list_body(
            self._objects,
            STATEMENT,
            BankStatement,
            merchant_id,
            "/v1/reconciliation/bank_statements",
            **page,
        )

    def list_exceptions(
        self,
        merchant_id: str,
        *,
        status: ExceptionStatus | None = None,
        kind: ExceptionKind | None = None,
        run: str | None = None,
        **page: Any,
    ) -> dict[str, Any]:
        filters = {
            name: value
            for name, value in (
                ("status", status.value if status else None),
                ("exception_kind", kind.value if kind else None),
                ("run", run),
            )
            if value
        }
        return list_body(
            self._objects,
            EXCEPTION,
            ReconciliationException,
            merchant_id,
            "/v1/reconciliation/exceptions",
            filters=filters or None,
            **page,
        )

    def retrieve_exception(self, merchant_id: str, exception_id: str) -> ReconciliationException:
        return fetch(
            self._objects,
            EXCEPTION,
            ReconciliationException,
            merchant_id,
            exception_id,
            param="exception",
        )

    def resolve(
        self, merchant_id: str, exception_id: str, ctx: RequestContext, *, resolution: Resolution
    ) -> Outcome:
        """Settle an open exception with one balanced ledger entry per currency it touches."""
        found = self.retrieve_exception(merchant_id, exception_id)
        if found.status != ExceptionStatus.OPEN:
            raise UnexpectedState(
                f"This exception has a status of {found.status.value}; only an open one can be "
                "resolved.",
                code=UNEXPECTED_STATE,
            )
        if resolution == Resolution.SETTLED_LATE:
            raise ParameterInvalid(
                "settled_late is how reconciliation closes an exception itself; resolve with "
                "accept_provider or write_off.",
                param="resolution",
            )
        now = int(self._clock())
        posted = self._resolution_entries(found, resolution, now)
        after = found.model_copy(
            update={
                "status": ExceptionStatus.RESOLVED,
                "resolution": resolution,
                "resolved_at": now,
                "ledger_entries": [*found.ledger_entries, *(e.id for e in posted)],
                "version": found.version + 1,
            }
        )
        batch = WriteBatch()
        for entry in posted:
            self._ledger.add(batch, entry)
        self._objects.put_version(batch, EXCEPTION, after, found.version, **_attributes(after))
        return self._committer.commit(ctx, batch, Outcome(200, after.to_api()))

    def _resolution_entries(
        self, found: ReconciliationException, resolution: Resolution, now: int
    ) -> list[entries.JournalEntry]:
        if found.kind in NO_LEDGER_MOVE:
            return []
        merchant_bears = resolution == Resolution.ACCEPT_PROVIDER
        common = {
            "merchant_id": found.merchant_id,
            "connector": found.provider,
            "source": found.object_id or found.subject,
            "merchant_bears": merchant_bears,
            "created": now,
        }
        if found.kind == ExceptionKind.CURRENCY_MISMATCH and found.payflow_currency:
            # PayFlow booked one currency, the PSP settled another: undo the one, book the other.
            return [
                entries.reconciliation_adjustment(
                    entry_id=f"je_recon_{found.id}_{found.currency}",
                    currency=found.currency,
                    delta=found.provider_amount,
                    **common,  # type: ignore[arg-type]
                ),
                entries.reconciliation_adjustment(
                    entry_id=f"je_recon_{found.id}_{found.payflow_currency}",
                    currency=found.payflow_currency,
                    delta=-found.payflow_amount,
                    **common,  # type: ignore[arg-type]
                ),
            ]
        if found.delta == 0:
            raise UnexpectedState(
                "This exception has no difference to post.", code=UNEXPECTED_STATE
            )
        return [
            entries.reconciliation_adjustment(
                entry_id=f"je_recon_{found.id}",
                currency=found.currency,
                delta=found.delta,
                **common,  # type: ignore[arg-type]
            )
        ]

    def inject(
        self,
        merchant_id: str,
        *,
        connector: str,
        date: str,
        seed: int,
        count: int,
        kinds: list[Discrepancy] | None,
    ) -> dict[str, Any]:
        """Sandbox only: discrepancies in a simulator's book among the merchant's operations
        of `date`; what was made, for a test or a benchmark to compare with what is found."""
        from chalicelib.connectors.simulator_settlement import DEFAULT_MIX

        if not self._sandbox:
            raise ResourceMissing("Unrecognized request URL (POST: /v1/sandbox/reconciliation).")
        config = self._registry.routing_for(merchant_id).connector(connector)
        if config is None or config.kind != ConnectorKind.SIMULATOR:
            raise ResourceMissing(
                f"No such simulator among this merchant's connectors: '{connector}'",
                param="connector",
            )
        mix = tuple(kinds) if kinds else DEFAULT_MIX
        made = self._settlement.inject(
            connector, merchant_id, date, seed=seed, count=count, kinds=mix
        )
        return {"object": "list", "data": [m.to_api() for m in made], "has_more": False}

    # -- the workflow's tasks --------------------------------------------------------------

    def prepare(self, task: dict[str, Any]) -> dict[str, Any]:
        """Read the day's reports, store their lines in chunks; the chunk numbers for the Map."""
        run = self.retrieve_run(task["merchant_id"], task["run_id"])
        routing = self._registry.routing_for(run.merchant_id)
        simulators = [c.id for c in routing.connectors if c.kind == ConnectorKind.SIMULATOR]
        per_provider, bank = self._settlement.report(simulators, run.merchant_id, run.date)
        rows: list[SettlementRow] = []
        for provider, lines in per_provider.items():
            # Through the file, as a report downloaded from the PSP would arrive.
            rows.extend(read_simulator(provider, write_simulator(lines)))
        skipped: dict[str, str] = {}
        stated: dict[str, list[Payout]] = {}
        for config in routing.connectors:
            if config.kind == ConnectorKind.SIMULATOR:
                continue
            try:
                connector = self._registry.connector(config)
                rows.extend(connector.settlement_report(run.merchant_id, run.date))
                payouts = connector.settlement_payouts(run.merchant_id, run.date)
                if payouts is not None:
                    stated[config.id] = payouts
                per_provider[config.id] = []
            except ConnectorError as error:
                skipped[config.id] = str(error)
        chunks = [
            [row.model_dump(mode="json") for row in chunk]
            for chunk in _chunks_of(rows, self._chunk_size)
        ]
        self._store.put_chunks(run.id, chunks)
        # Through the file, as the merchant's upload of the same CSV would arrive.
        statement = (
            parse_statement(write_bank_statement(bank), StatementFormat.CSV).lines if bank else []
        )
        self._save_run(
            run,
            providers=sorted(per_provider),
            skipped_providers=skipped,
            rows=len(rows),
        )
        return {
            "chunks": [
                {"run_id": run.id, "merchant_id": run.merchant_id, "chunk": number}
                for number in range(len(chunks))
            ],
            "bank": [line.model_dump(mode="json") for line in statement],
            # The simulators' own bank; finish adds the statements the merchant uploaded.
            "bank_covers": simulators,
            # The payouts a provider's report states, by provider (the others' are added up).
            "payouts": {
                provider: [p.model_dump(mode="json") for p in payouts]
                for provider, payouts in stated.items()
            },
        }

    def match_chunk(self, task: dict[str, Any]) -> dict[str, Any]:
        """Match one chunk's lines; counts of what they became and the fees booked."""
        run = self.retrieve_run(task["merchant_id"], task["run_id"])
        rows = [SettlementRow.model_validate(r) for r in self._store.chunk(run.id, task["chunk"])]
        booked = self._booked_for(run.merchant_id, rows)
        intents = {
            pi_id: str(data.get("status"))
            for pi_id, data in self._objects.get_many(
                "payment_intent",
                run.merchant_id,
                [r.payment_intent for r in rows if r.payment_intent],
            ).items()
        }
        counts: Counter[str] = Counter()
        fees: Counter[str] = Counter()
        by_provider: dict[str, list[SettlementRow]] = {}
        for row in rows:
            by_provider.setdefault(row.provider, []).append(row)
        for provider, lines in sorted(by_provider.items()):
            settled = self._store.settled_by(
                run.merchant_id, provider, [s for r in lines for s in _may_settle(r, booked)]
            )
            grouped: list[_Plain] = []
            for row in lines:
                outcome, fee, subject = self._match_line(
                    run, row, booked, intents, settled, grouped
                )
                counts[outcome] += 1
                if fee:
                    fees[row.currency] += fee
                settled.setdefault(subject, row.row_id)
                if len(grouped) >= GROUPED_LINES:
                    fees.update(self._commit_plain(run.merchant_id, grouped))
                    grouped = []
            fees.update(self._commit_plain(run.merchant_id, grouped))
        return {"counts": dict(counts), "fees": dict(fees)}

    def _commit_plain(self, merchant_id: str, lines: list[_Plain]) -> Counter[str]:
        """Commit matched lines together (their markers and fees, one balance update per
        currency); if one was written meanwhile, each on its own. The fees booked."""
        if not lines:
            return Counter()
        try:
            self._write_plain(merchant_id, lines)
        except ConditionFailed:
            booked: Counter[str] = Counter()
            for line in lines:
                try:
                    self._write_plain(merchant_id, [line])
                except ConditionFailed:
                    continue  # another run of this line wrote first: what it wrote stands
                booked.update(_fees_of([line]))
            return booked
        return _fees_of(lines)

    def _write_plain(self, merchant_id: str, lines: list[_Plain]) -> None:
        batch = WriteBatch()
        by_currency: dict[str, list[entries.JournalEntry]] = {}
        for line in lines:
            self._store.mark_settled(batch, merchant_id, line.provider, line.subject, line.row_id)
            if line.fee is not None:
                by_currency.setdefault(line.fee.currency, []).append(line.fee)
        for fees in by_currency.values():
            self._ledger.add(batch, *fees)
        commit(self._client, batch)

    def _match_line(
        self,
        run: ReconciliationRun,
        row: SettlementRow,
        booked: dict[str, Booked],
        intents: dict[str, str],
        settled: dict[str, str],
        grouped: list[_Plain],
    ) -> tuple[str, int, str]:
        """What one line became, the fee it booked and the subject it settled. A dispute line
        whose report does not say which occurrence it is takes the next one no other line
        settled, committed on its own: the conditional marker decides between two lines (in
        parallel chunks or runs) taking the same one, and the loser takes the next (or is
        the duplicate)."""
        if row.movement is None or row.occurrence is not None:
            label, fee = self._match_one(run, row, booked, intents, settled, grouped)
            return label, fee, _settles(row)
        while True:
            placed = dispute_occurrence(row, booked, settled)
            try:
                label, fee = self._match_one(run, placed, booked, intents, settled, None)
            except _OccurrenceTaken:
                settled.update(
                    self._store.settled_by(
                        run.merchant_id, row.provider, dispute_subjects(row, booked)
                    )
                )
                continue
            return label, fee, _settles(placed)

    def _match_one(
        self,
        run: ReconciliationRun,
        row: SettlementRow,
        booked: dict[str, Booked],
        intents: dict[str, str],
        settled: dict[str, str],
        grouped: list[_Plain] | None,
    ) -> tuple[str, int]:
        """What one line became (`matched`, `repaired` or `kind:<exception kind>`) and the fee
        it booked. A line that simply matched joins `grouped`, committed by the caller (its
        fee is counted there); with no `grouped`, it is committed here, and another line
        having settled its subject meanwhile raises _OccurrenceTaken."""
        subject = _settles(row)
        earlier = settled.get(subject)
        record = booked.get(subject)
        finding = match_row(
            row,
            record,
            intents.get(row.payment_intent or ""),
            duplicate=earlier is not None and earlier != row.row_id,
        )
        label = "matched" if finding.matched else f"kind:{finding.kind}"
        if earlier == row.row_id:
            # Matched before (a rerun of this chunk or of this day): its writes are in place.
            return label, 0
        duplicate = finding.kind == ExceptionKind.DUPLICATE_SETTLEMENT
        fee_entry = None
        if record is not None and record.kind == "charge" and row.fee and not duplicate:
            fee_entry = entries.provider_fee(
                merchant_id=run.merchant_id,
                currency=record.currency,
                connector=row.provider,
                charge=record.id,
                fee=row.fee,
                created=int(self._clock()),
            )
        late = record is not None and row.settled_on > day_of(record.created)
        if finding.matched and not late and grouped is not None:
            grouped.append(_Plain(row.provider, subject, row.row_id, fee_entry))
            return label, 0
        batch = WriteBatch()
        fee = fee_entry.balance_changes()[entries.AVAILABLE] if fee_entry else 0
        if not duplicate:
            self._store.mark_settled(batch, run.merchant_id, row.provider, subject, row.row_id)
        if fee_entry is not None:
            self._ledger.add(batch, fee_entry)
        if finding.matched and record is not None:
            self._close_late(batch, run, record)
        else:
            exception = self._repaired(self._exception(run, finding, record), finding, row, batch)
            if exception.status == ExceptionStatus.REPAIRED:
                label = "repaired"
            self._record_exception(batch, exception)
        try:
            commit(self._client, batch)
        except ConditionFailed:
            if grouped is None and not duplicate:
                holder = self._store.settled_by(run.merchant_id, row.provider, [subject])
                if holder.get(subject, row.row_id) != row.row_id:
                    raise _OccurrenceTaken(subject) from None
            # Another run of this line wrote first: what it wrote stands.
            return label, 0
        return label, fee

    def _booked_for(self, merchant_id: str, rows: list[SettlementRow]) -> dict[str, Booked]:
        """PayFlow's charges and refunds the lines name, by id."""
        charges = self._objects.get_many(
            "charge",
            merchant_id,
            [r.charge_id for r in rows if r.type == RowType.CHARGE and r.charge_id],
        )
        refund_ids = [r.refund_id for r in rows if r.type == RowType.REFUND and r.refund_id]
        refunds = self._objects.get_many(
            "refund", merchant_id, [i for i in refund_ids if not i.startswith(REPAIR_PREFIX)]
        )
        found = {i: _booked_charge(c) for i, c in charges.items()}
        found.update({i: _booked_refund(r) for i, r in refunds.items()})
        found.update(self._disputes_named(merchant_id, rows))
        for row in rows:
            if row.type == RowType.REFUND and (row.refund_id or "").startswith(REPAIR_PREFIX):
                # Reconciliation's own refund of a charge found at the PSP: booked as a repair.
                line = str(row.refund_id).removeprefix(REPAIR_PREFIX)
                entry = self._ledger.entry(f"je_recon_refund_{line}")
                if entry is not None:
                    found[str(row.refund_id)] = Booked(
                        kind="refund",
                        id=str(row.refund_id),
                        payment_intent=row.payment_intent or "",
                        amount=entry.balance_changes()[entries.SUSPENSE],
                        currency=entry.currency,
                        connector=row.provider,
                        created=entry.created,
                    )
        return found

    def _disputes_named(self, merchant_id: str, rows: list[SettlementRow]) -> dict[str, Booked]:
        """The money movements of the merchant's disputes the dispute lines name, by subject
        (the provider's dispute id and the movement's direction)."""
        routing = self._registry.routing_for(merchant_id)
        found: dict[str, Booked] = {}
        for row in rows:
            config = routing.connector(row.provider)
            if row.type != RowType.DISPUTE or not row.dispute_id or config is None:
                continue
            dispute = self._disputes().by_reference(config.kind.value, row.dispute_id)
            if dispute is not None and dispute.merchant_id == merchant_id:
                found.update({b.id: b for b in _booked_dispute(dispute)})
        return found

    def _exception(
        self, run: ReconciliationRun, finding: Finding, record: Booked | None
    ) -> ReconciliationException:
        return ReconciliationException(
            id=finding.exception_id,
            merchant_id=run.merchant_id,
            run=run.id,
            kind=finding.kind or ExceptionKind.MISSING_IN_PAYFLOW,
            provider=finding.provider,
            subject=finding.subject,
            row_id=finding.row_id,
            object_id=finding.object_id,
            payment_intent=finding.payment_intent,
            psp_reference=finding.psp_reference,
            currency=finding.currency,
            provider_amount=finding.provider_amount,
            payflow_amount=finding.payflow_amount,
            payflow_currency=record.currency if record else None,
            repair=finding.repair,
            created=int(self._clock()),
        )

    def _repaired(
        self,
        exception: ReconciliationException,
        finding: Finding,
        row: SettlementRow,
        batch: WriteBatch,
    ) -> ReconciliationException:
        """Make the repair `finding` names, if any; the exception as it then stands."""
        now = int(self._clock())
        try:
            if finding.repair == Repair.REFUND_AT_PROVIDER:
                connector = self._registry.connector_for(exception.merchant_id, row.provider)
                connector.refund(
                    row.psp_reference, row.amount, idempotency_key=REPAIR_PREFIX + row.row_id
                )
                posted = entries.found_at_provider(
                    merchant_id=exception.merchant_id,
                    currency=row.currency,
                    connector=row.provider,
                    line=row.row_id,
                    amount=row.amount,
                    created=now,
                )
                # Together: one merchant and currency, one balance update (net zero here).
                self._ledger.add(batch, *posted)
                ids = [entry.id for entry in posted]
            elif finding.repair == Repair.RECORD_CAPTURE and row.payment_intent:
                self._payment_intents().capture(
                    exception.merchant_id,
                    row.payment_intent,
                    RequestContext(request_id=None),
                    amount_to_capture=row.amount,
                    metadata=None,
                )
                ids = [f"je_charge_{row.charge_id}"]
            else:
                return exception
        except RefundRefused as refused:
            return exception.model_copy(
                update={"repair_error": f"refund refused: {refused.reason}"}
            )
        except (ConnectorError, PayFlowError) as error:
            return exception.model_copy(update={"repair_error": f"{type(error).__name__}: {error}"})
        return exception.model_copy(
            update={"status": ExceptionStatus.REPAIRED, "resolved_at": now, "ledger_entries": ids}
        )

    def _record_exception(self, batch: WriteBatch, exception: ReconciliationException) -> None:
        self._objects.put_new(batch, EXCEPTION, exception, **_attributes(exception))
        add_event(
            self._objects,
            batch,
            RequestContext(request_id=None),
            merchant_id=exception.merchant_id,
            event_type=EXCEPTION_EVENT,
            data_object=exception.to_api(),
            created=exception.created,
        )

    def _close_late(self, batch: WriteBatch, run: ReconciliationRun, record: Booked) -> None:
        """A settlement that arrived after its SLA closes the exception it had become."""
        missing = Finding(
            ExceptionKind.MISSING_AT_PROVIDER, record.connector, record.id, record.currency, 0, 0
        )
        self._close_settled_late(batch, run.merchant_id, missing.exception_id)

    def _close_settled_late(self, batch: WriteBatch, merchant_id: str, exception_id: str) -> None:
        """Add to `batch`: the exception, if it is open, closed by what came late."""
        data = self._objects.get(EXCEPTION, merchant_id, exception_id)
        if data is None:
            return
        found = ReconciliationException.model_validate(data)
        if found.status != ExceptionStatus.OPEN:
            return
        closed = found.model_copy(
            update={
                "status": ExceptionStatus.RESOLVED,
                "resolution": Resolution.SETTLED_LATE,
                "resolved_at": int(self._clock()),
                "version": found.version + 1,
            }
        )
        self._objects.put_version(batch, EXCEPTION, closed, found.version, **_attributes(closed))

    def finish(self, task: dict[str, Any]) -> dict[str, Any]:
        """Bookings no line settled, payouts against the bank, and the run's counts."""
        run = self.retrieve_run(task["merchant_id"], task["run_id"])
        counts: Counter[str] = Counter()
        fees: Counter[str] = Counter()
        for result in task.get("matched") or []:
            counts.update(result.get("counts", {}))
            fees.update(result.get("fees", {}))
        rows = [
            SettlementRow.model_validate(r)
            for item in task["prepared"]["chunks"]
            for r in self._store.chunk(run.id, item["chunk"])
        ]
        own = [BankLine.model_validate(line) for line in task["prepared"]["bank"]]
        payouts = _payouts(rows, task["prepared"].get("payouts") or {})
        bank = self._bank_side(run, payouts, own, set(task["prepared"].get("bank_covers", [])))
        findings = list(bank.findings)
        awaited = 0
        for provider in run.providers:
            bookings = self._bookings_of_day(run, provider)
            settled = self._store.settled_by(run.merchant_id, provider, [b.id for b in bookings])
            missing, waiting = missing_at_provider(
                bookings,
                set(settled),
                day=run.date,
                now=int(self._clock()),
                sla_days=run.sla_days,
            )
            findings.extend(missing)
            awaited += waiting
        for finding in findings:
            counts[f"kind:{finding.kind}"] += 1
            batch = WriteBatch()
            self._record_exception(batch, self._exception(run, finding, None))
            try:
                commit(self._client, batch)
            except ConditionFailed:
                continue  # found by an earlier run (or an earlier try of this one)
        by_kind = {
            key.removeprefix("kind:"): value
            for key, value in sorted(counts.items())
            if key.startswith("kind:")
        }
        done = self._save_run(
            run,
            status=RunStatus.SUCCEEDED,
            completed_at=int(self._clock()),
            matched=counts["matched"],
            repaired=counts["repaired"],
            exceptions=sum(by_kind.values()) + counts["repaired"],
            exceptions_by_kind=by_kind,
            awaiting_settlement=awaited,
            payouts=len(payouts),
            payouts_matched=bank.matched,
            awaiting_bank=bank.awaiting,
            bank_covers=bank.covers,
            bank_not_covered=bank.not_covered,
            bank_statements=bank.statements,
            fees=dict(fees),
        )
        return {"status": done.status.value}

    def _bank_side(
        self,
        run: ReconciliationRun,
        payouts: list[Payout],
        own: list[BankLine],
        own_bank: set[str],
    ) -> _BankResult:
        """The run's payouts against the bank: the simulators' own bank, and the statements
        the merchant uploaded covering the days the payouts may arrive on. Credits matched
        are marked (a credit carries one payout, whichever run matches it first)."""
        window = set(window_of(run.date))
        for payout in payouts:
            window.update(window_of(payout.settled_on))
        statements = [
            s
            for s in (
                BankStatement.model_validate(data)
                for data in self._objects.all_of(STATEMENT, run.merchant_id)
            )
            if window.intersection(s.days())
        ]
        covered_days = frozenset(day for s in statements for day in s.days())
        lines: dict[str, BankLine] = {}
        for line in [*own, *(line for s in statements for line in s.lines)]:
            lines.setdefault(line.entry_id, line)  # one entry in two overlapping statements
        routing = self._registry.routing_for(run.merchant_id)
        kinds = {c.id: c.kind.value for c in routing.connectors}
        covers, not_covered = [], {}
        run_window = window_of(run.date)
        for provider in run.providers:
            if provider in own_bank or covered_days.intersection(run_window):
                covers.append(provider)
            else:
                not_covered[provider] = (
                    f"no bank statement uploaded for {run_window[0]}..{run_window[-1]}"
                )
        view = BankView(
            lines=list(lines.values()),
            claimed=self._store.settled_by(run.merchant_id, BANK, list(lines)),
            kinds=kinds,
            covered_days=covered_days,
            own_bank=frozenset(own_bank),
        )
        now = int(self._clock())
        decided = match_bank([p for p in payouts if p.provider in covers], view, now=now)
        providers = [p for p in covers if p not in own_bank]
        found = [f for f in decided.findings if not f.matched]
        found += unmatched_credits(view, decided.claims, day=run.date, now=now, providers=providers)
        by_id = {p.id: p for p in payouts}
        for entry_id, payout_id in decided.claims.items():
            self._claim_credit(run, entry_id, by_id[payout_id])
        return _BankResult(
            findings=found,
            matched=sum(1 for f in decided.findings if f.matched),
            awaiting=decided.awaiting,
            covers=covers,
            not_covered=not_covered,
            statements=[s.id for s in statements],
        )

    def _claim_credit(self, run: ReconciliationRun, entry_id: str, payout: Payout) -> None:
        """Mark the credit as this payout's; an exception it was as an unmatched credit is
        closed (its payout's run came later)."""
        batch = WriteBatch()
        self._store.mark_settled(batch, run.merchant_id, BANK, entry_id, payout.id)
        unmatched = Finding(
            ExceptionKind.BANK_CREDIT_UNMATCHED, payout.provider, entry_id, payout.currency, 0, 0
        )
        self._close_settled_late(batch, run.merchant_id, unmatched.exception_id)
        with contextlib.suppress(ConditionFailed):
            commit(self._client, batch)  # claimed by an earlier run: what it wrote stands

    def fail(self, task: dict[str, Any]) -> dict[str, Any]:
        """The workflow failed: say so on the run (running it again is safe)."""
        run = self.retrieve_run(task["merchant_id"], task["run_id"])
        failure = task.get("failure") or {}
        cause = f"{failure.get('Error', 'unknown')}: {str(failure.get('Cause', ''))[:500]}"
        self._save_run(run, status=RunStatus.FAILED, failure=cause)
        return {"status": RunStatus.FAILED.value}

    def _bookings_of_day(self, run: ReconciliationRun, provider: str) -> list[Booked]:
        """PayFlow's captured charges and paid refunds of the run's day at `provider`."""
        found = []
        for data in self._objects.all_of("charge", run.merchant_id):
            charge = _booked_charge(data)
            if (
                charge.connector == provider
                and charge.captured
                and day_of(charge.created) == run.date
            ):
                found.append(charge)
        for data in self._objects.all_of("refund", run.merchant_id):
            refund = _booked_refund(data)
            if (
                refund.connector == provider
                and refund.status == "succeeded"
                and day_of(refund.created) == run.date
            ):
                found.append(refund)
        config = self._registry.routing_for(run.merchant_id).connector(provider)
        for data in self._objects.all_of("dispute", run.merchant_id):
            dispute = Dispute.model_validate(data)
            # Only the provider that reported a dispute has a line for it in its report.
            if config is None or dispute.provider != config.kind.value:
                continue
            found.extend(
                movement
                for movement in _booked_dispute(dispute)
                if movement.connector == provider and day_of(movement.created) == run.date
            )
        return found

    def _save_run(self, run: ReconciliationRun, **changes: Any) -> ReconciliationRun:
        after = run.model_copy(update={**changes, "version": run.version + 1})
        batch = WriteBatch()
        self._objects.put_version(batch, RUN, after, run.version, status=after.status.value)
        commit(self._client, batch)
        return after


@dataclass(frozen=True)
class _BankResult:
    """What the bank side of a run found, for finish to record."""

    findings: list[Finding]
    matched: int
    awaiting: int
    covers: list[str]
    not_covered: dict[str, str]
    statements: list[str]


GROUPED_LINES = 30
"""Matched lines committed in one transaction: 3 writes each and a balance update per currency,
within TransactWriteItems' 100."""


@dataclass(frozen=True)
class _Plain:
    """A line that matched: its settled marker and its fee, to commit with others."""

    provider: str
    subject: str
    row_id: str
    fee: entries.JournalEntry | None


def _payouts(rows: list[SettlementRow], stated: dict[str, list[dict[str, Any]]]) -> list[Payout]:
    """The run's payouts: those a provider's report states as it states them, the others added
    up from their lines."""
    return [
        *(p for p in payouts_of(rows) if p.provider not in stated),
        *(Payout.model_validate(p) for payouts in stated.values() for p in payouts),
    ]


def _fees_of(lines: list[_Plain]) -> Counter[str]:
    fees: Counter[str] = Counter()
    for line in lines:
        if line.fee is not None:
            fees[line.fee.currency] += line.fee.balance_changes()[entries.AVAILABLE]
    return fees


REPAIR_PREFIX = "recon_"
"""Idempotency key prefix of reconciliation's own refunds at a PSP (then the line's id)."""


class _OccurrenceTaken(Exception):
    """Another line settled the dispute movement a line was given meanwhile (a parallel
    chunk or run): the line takes the next one."""


def _settles(row: SettlementRow) -> str:
    """The PayFlow object a line settles: its refund, its dispute's movement (a line whose
    occurrence is not given yet: its first), else its charge."""
    if row.type == RowType.REFUND and row.refund_id:
        return row.refund_id
    if row.movement is not None:
        return dispute_subject(row.dispute_id or row.row_id, row.movement, row.occurrence or 1)
    return row.charge_id or row.row_id


def _may_settle(row: SettlementRow, booked: dict[str, Booked]) -> list[str]:
    """The subjects whose settled markers decide a line: its own, or for a dispute line
    every occurrence of its movement PayFlow booked."""
    return dispute_subjects(row, booked) if row.movement is not None else [_settles(row)]


def _chunks_of(rows: list[SettlementRow], size: int) -> list[list[SettlementRow]]:
    """The lines in chunks of about `size`, the lines of one dispute (of one provider)
    together in one chunk, oldest first: which line is which occurrence is then decided by
    one task in one order, the same in every run."""
    units: dict[tuple[str, ...], list[SettlementRow]] = {}
    for number, row in enumerate(rows):
        if row.movement is not None and row.dispute_id:
            key: tuple[str, ...] = ("dispute", row.provider, row.dispute_id)
        else:
            key = ("line", str(number))
        units.setdefault(key, []).append(row)
    chunks: list[list[SettlementRow]] = [[]]
    for key, unit in units.items():
        if chunks[-1] and len(chunks[-1]) + len(unit) > size:
            chunks.append([])
        chunks[-1].extend(in_occurrence_order(unit) if key[0] == "dispute" else unit)
    return [chunk for chunk in chunks if chunk]


def _booked_dispute(dispute: Dispute) -> list[Booked]:
    """The withdrawal and reinstatement PayFlow booked for a dispute, from its balance
    transactions (a loss's payout moves no merchant money and settles no line)."""
    found: dict[str, Booked] = {}
    movements = {m.value: m for m in DisputeMovement}
    seen: Counter[DisputeMovement] = Counter()
    for txn in dispute.balance_transactions:
        movement = movements.get(str(txn.get("reporting_category")))
        if movement is None:
            continue
        # A dispute lost after it was won is withdrawn a second time: its own subject.
        seen[movement] += 1
        subject = dispute_subject(dispute.provider_reference, movement, seen[movement])
        found.setdefault(
            subject,
            Booked(
                kind=movement.value,
                id=subject,
                payment_intent=dispute.payment_intent or "",
                amount=abs(int(txn["amount"])),
                currency=dispute.currency,
                connector=dispute.connector,
                created=int(txn["created"]),
                fee=int(txn["fee"]),
                object_id=dispute.id,
            ),
        )
    return list(found.values())


def _booked_charge(data: dict[str, Any]) -> Booked:
    captured = bool(data.get("captured"))
    return Booked(
        kind="charge",
        id=data["id"],
        payment_intent=data.get("payment_intent", ""),
        amount=int(data.get("amount_captured", 0)) if captured else int(data["amount"]),
        currency=data["currency"],
        connector=data.get("connector", ""),
        created=int(data["created"]),
        captured=captured,
        status=str(data.get("status")),
    )


def _booked_refund(data: dict[str, Any]) -> Booked:
    return Booked(
        kind="refund",
        id=data["id"],
        payment_intent=data.get("payment_intent", ""),
        amount=int(data["amount"]),
        currency=data["currency"],
        connector=data.get("connector", ""),
        created=int(data["created"]),
        status=str(data.get("status", "pending")),
    )


def _attributes(exception: ReconciliationException) -> dict[str, str]:
    return {
        "status": exception.status.value,
        "exception_kind": exception.kind.value,
        "run": exception.run,
    }
