"""`payflow backfill-indexes`: give objects stored by an older PayFlow the index attributes a
write stores today, without writing the objects again.

Index keys are computed when an object is written (`chalicelib.dal.objects.index_attributes`),
so an index added later (`gsi2`/`gsi3` for PaymentIntents by connector and payment method, an
event's `gsi2` key and `object_id` for a payment's timeline) misses every object stored before
it (docs/persistence.md, "Upgrading"). This walks a merchant's (or every merchant's)
objects of each family through `gsi1`, computes each item's attributes with that same function
from the stored object, and for an item whose attributes are missing or stale writes those
attributes alone, on condition that the item's version is unchanged: a real write in between
wins (and stored fresh attributes itself); it is counted and looked at again on the next run.

Webhook deliveries are walked too, endpoint by endpoint: a pending or failed delivery stored
before `gsi3` listed them (`chalicelib.dal.webhooks.OPEN_INDEX`) is missing from
`?status=pending|failed` and from a resend until it gets its keys; those alone are written, on
condition that its status is unchanged (every status write stores its keys itself). No stream
consumer reads a delivery's records.

The object's data and version are never written, so the stream carries a MODIFY whose
object is unchanged: the outbox relay reads INSERTs of events only, the analytics rollup
INSERTs of attempts and a refund's move to `succeeded`, so no event, webhook or count comes of
it; `resume_payments` sees a PaymentIntent in `processing` and starts its execution under its
deterministic name, which joins the one already there, as for any write of such a payment.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from payflow.locate import CliError

if TYPE_CHECKING:
    from chalicelib.dal.objects import ObjectStore
    from chalicelib.dal.webhooks import WebhookStore
# The data layer (and boto3 with it) is imported by the functions that use it: every `payflow`
# command builds this command's parser.

PAGE_SIZE = 100
"""Items read per Query: a `--limit` run reads at most one page past the item it stops at."""


@dataclass(frozen=True)
class Family:
    """A stored object family: its kind, its model, and the top-level attributes its writes
    pass to the store (the same function the services call)."""

    kind: str
    model: Any
    top_level: Callable[[Any], dict[str, str]]


@cache
def families() -> dict[str, Family]:
    """The families a run walks, by kind, in its order: PaymentIntents first (their filters are
    what users miss), events, then every family kept through `services.resources.Resource`."""
    from chalicelib.domain.events import Event
    from chalicelib.domain.payment_intents import PaymentIntent
    from chalicelib.services.charges import CHARGES
    from chalicelib.services.customers import CUSTOMERS
    from chalicelib.services.disputes import DISPUTES
    from chalicelib.services.payment_methods import PAYMENT_METHODS
    from chalicelib.services.setup_intents import SETUP_ATTEMPTS, SETUP_INTENTS

    found = [
        Family("payment_intent", PaymentIntent, PaymentIntent.attributes),
        # services.context.add_event stores an event's type beside it, nothing else.
        Family("event", Event, lambda event: {"type": event.type}),
        *(
            Family(resource.kind, resource.model, resource.top_level)
            for resource in (
                CHARGES,
                CUSTOMERS,
                DISPUTES,
                PAYMENT_METHODS,
                SETUP_INTENTS,
                SETUP_ATTEMPTS,
            )
        ),
    ]
    return {family.kind: family for family in found}


DELIVERIES = "webhook_delivery"
"""The kind name of webhook deliveries, walked after the object families."""


def kinds() -> list[str]:
    """Every kind a run can walk, in its order."""
    return [*families(), DELIVERIES]


class BackfillError(CliError):
    """A cursor that does not belong to this run's options."""


@dataclass
class Tally:
    """What a run found among one kind's items."""

    kind: str
    scanned: int = 0
    updated: int = 0
    """Items given their attributes (in a dry run: items that would be)."""
    current: int = 0
    """Items whose attributes were already what a write stores today."""
    concurrent: int = 0
    """Items written by someone else between the read and the update: skipped, re-read next run."""
    unreadable: list[str] = field(default_factory=list)
    """Ids of items whose data the family's model refuses (left as they are)."""


@dataclass
class Outcome:
    """A run's tallies by kind, and where the next run goes on (None: the walk ended)."""

    tallies: dict[str, Tally]
    cursor: str | None
    dry_run: bool


def index_change(family: Family, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """What a stored item (`values`, plain) lacks of the attributes a write of its object
    stores today: (attributes to set, index attributes to remove); both empty when current."""
    from chalicelib.dal.objects import INDEX_KEYS, KEY_ATTRIBUTES, index_attributes, object_data

    obj = family.model.model_validate(object_data(values))
    wanted = index_attributes(family.kind, obj, **family.top_level(obj))
    changed = {
        name: value
        for name, value in wanted.items()
        if name not in KEY_ATTRIBUTES and values.get(name) != value
    }
    removed = sorted(name for name in INDEX_KEYS if name in values and name not in wanted)
    return changed, removed


@dataclass(frozen=True)
class _Position:
    merchant: str
    kind: str
    after: str | None
    """The id of the last object read, or None: from the kind's first."""


class _Walk(Protocol):
    """One kind's stored items and how their index attributes are checked and written."""

    def items(self, merchant: str, after: str | None) -> Iterator[dict[str, Any]]:
        """The merchant's items (plain values), from after the one `after` names."""
        ...

    def name(self, values: dict[str, Any]) -> str:
        """What names an item in a cursor's `after` (and among the unreadable)."""
        ...

    def change(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(attributes to set, to remove); ValueError when the item cannot be read."""
        ...

    def write(self, values: dict[str, Any], changed: dict[str, Any], removed: list[str]) -> bool:
        """Write them unless a write came first (False)."""
        ...


@dataclass(frozen=True)
class _Objects:
    family: Family
    store: ObjectStore

    def items(self, merchant: str, after: str | None) -> Iterator[dict[str, Any]]:
        return self.store.items_of(self.family.kind, merchant, after=after, page_size=PAGE_SIZE)

    def name(self, values: dict[str, Any]) -> str:
        return str(values["pk"])

    def change(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        return index_change(self.family, values)

    def write(self, values: dict[str, Any], changed: dict[str, Any], removed: list[str]) -> bool:
        return self.store.set_index_attributes(self.family.kind, values, changed, removed)


@dataclass(frozen=True)
class _Deliveries:
    """Each of the merchant's endpoints' deliveries, endpoints in id order; an item is named
    `<endpoint id>/<delivery id>`."""

    store: WebhookStore

    def items(self, merchant: str, after: str | None) -> Iterator[dict[str, Any]]:
        endpoint_after, _, delivery_after = (after or "").partition("/")
        for endpoint in sorted(self.store.all_endpoints(merchant), key=lambda e: e.id):
            if endpoint.id < endpoint_after:
                continue
            start = delivery_after if endpoint.id == endpoint_after else None
            yield from self.store.stored_deliveries(endpoint.id, after=start, page_size=PAGE_SIZE)

    def name(self, values: dict[str, Any]) -> str:
        return f"{values['endpoint_id']}/{values['id']}"

    def change(self, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        changed, removed = self.store.open_index_change(values)
        return dict(changed), removed

    def write(self, values: dict[str, Any], changed: dict[str, Any], removed: list[str]) -> bool:
        return self.store.set_open_keys(values, changed, removed)


def backfill(
    objects: ObjectStore,
    merchants: Sequence[str],
    kinds: Sequence[str],
    *,
    scope: str,
    deliveries: WebhookStore | None = None,
    dry_run: bool = False,
    limit: int | None = None,
    resume: str | None = None,
) -> Outcome:
    """Walk `merchants` x `kinds` (in that order) and give each item that lacks them the index
    attributes a write stores today; at most `limit` items read. `scope` names the run's
    choice of merchants in its cursor, so a cursor is only taken back by the same choice.
    `deliveries` is the store DELIVERIES are walked through (needed when `kinds` holds it)."""
    kinds = list(kinds)
    start = _decode(resume, scope, kinds) if resume else None
    tallies = {kind: Tally(kind) for kind in kinds}
    budget = limit
    for position in _positions(merchants, kinds, start):
        walk: _Walk
        if position.kind == DELIVERIES:
            assert deliveries is not None, "walking deliveries needs their store"
            walk = _Deliveries(deliveries)
        else:
            walk = _Objects(families()[position.kind], objects)
        tally = tallies[position.kind]
        last = position.after
        for values in walk.items(position.merchant, position.after):
            if budget == 0:
                # Stopped where there is more: the cursor is the last item read (None when
                # that more is the first of a kind, which a resume starts from).
                cursor = _Position(position.merchant, position.kind, last)
                return Outcome(tallies, _encode(cursor, scope, kinds), dry_run)
            _one(walk, values, tally, dry_run=dry_run)
            last = walk.name(values)
            if budget is not None:
                budget -= 1
    return Outcome(tallies, None, dry_run)


def _one(walk: _Walk, values: dict[str, Any], tally: Tally, *, dry_run: bool) -> None:
    tally.scanned += 1
    try:
        changed, removed = walk.change(values)
    except ValueError:  # pydantic's ValidationError: the item stays as it is, named
        tally.unreadable.append(walk.name(values))
        return
    if not changed and not removed:
        tally.current += 1
    elif dry_run or walk.write(values, changed, removed):
        tally.updated += 1
    else:
        tally.concurrent += 1


def _positions(
    merchants: Sequence[str], kinds: Sequence[str], start: _Position | None
) -> Iterator[_Position]:
    started = start is None
    for merchant in merchants:
        for kind in kinds:
            if not started and start is not None:
                if (merchant, kind) != (start.merchant, start.kind):
                    continue
                started = True
                yield start
                continue
            yield _Position(merchant, kind, None)
    if not started:
        raise BackfillError(
            "--resume names a merchant this run does not walk (was it deleted?): "
            "start again without --resume"
        )


def _encode(position: _Position, scope: str, kinds: Sequence[str]) -> str:
    body = {
        "scope": scope,
        "kinds": list(kinds),
        "merchant": position.merchant,
        "kind": position.kind,
        "after": position.after,
    }
    text = json.dumps(body, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, scope: str, kinds: Sequence[str]) -> _Position:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        body = json.loads(text)
        after = body["after"]
        if after is not None and not isinstance(after, str):
            raise TypeError(after)
        position = _Position(str(body["merchant"]), str(body["kind"]), after)
        made_for = (body["scope"], list(body["kinds"]))
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise BackfillError(
            "--resume takes the cursor a previous `payflow backfill-indexes` printed"
        ) from None
    if made_for != (scope, list(kinds)):
        raise BackfillError(
            f"--resume's cursor was printed by a run over {made_for[0]} and kinds "
            f"{','.join(made_for[1])}: give the same --merchant and --kind"
        )
    return position


# -- the command ---------------------------------------------------------------------------------


def add_command(commands: Any, aws_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """`payflow backfill-indexes` and its options."""
    command = commands.add_parser(
        "backfill-indexes",
        help="give objects stored by an older PayFlow the index keys writes store today",
        description="After upgrading PayFlow on a sandbox that kept its state (or a deployed "
        "stack): objects stored before an index existed are missing from what reads it "
        "(GET /v1/payment_intents?connector= and ?payment_method_type=, the dashboard's "
        "filters, GraphQL, search, a payment's timeline, an endpoint's pending and failed "
        "deliveries). This writes each such item's index "
        "attributes, and nothing else, on condition that nobody wrote it meanwhile; a second "
        "run updates nothing. Prints counts by kind, and a cursor for --resume when --limit "
        "stopped it.",
    )
    aws_options(command)
    command.add_argument(
        "--aws",
        action="store_true",
        help="the deployed stack in the AWS account and region the shell is configured for "
        "(AWS_PROFILE, AWS_REGION), not the sandbox",
    )
    command.add_argument("--merchant", help="only this merchant (default: every merchant)")
    # Kinds are checked when the command runs: listing them here would import every service
    # module for each `payflow` command.
    command.add_argument(
        "--kind",
        action="append",
        help="only this kind, e.g. payment_intent, event or webhook_delivery (repeatable; "
        "default: every kind kept with index attributes, PaymentIntents first)",
    )
    command.add_argument(
        "--dry-run", action="store_true", help="count what would be updated, write nothing"
    )
    command.add_argument(
        "--limit", type=int, help="read at most this many items, then print a cursor"
    )
    command.add_argument("--resume", metavar="CURSOR", help="go on where a --limit run stopped")


def run(args: argparse.Namespace, dynamodb: Any, out: TextIO | None = None) -> int:
    """Run the command on the stack's payments table; 1 when an item could not be read."""
    from chalicelib.dal.merchants import MerchantStore
    from chalicelib.dal.objects import ObjectStore
    from chalicelib.dal.webhooks import WebhookStore

    out = out or sys.stdout
    if args.limit is not None and args.limit < 1:
        raise CliError("--limit must be at least 1")
    table = f"{args.stack}-payments"
    unknown = sorted(set(args.kind or ()) - set(kinds()))
    if unknown:
        raise CliError(f"unknown --kind {', '.join(unknown)}: one of {', '.join(kinds())}")
    walked = [kind for kind in kinds() if kind in set(args.kind or kinds())]
    if args.merchant:
        merchants, scope = [args.merchant], args.merchant
        if MerchantStore(dynamodb, table).get(args.merchant) is None:
            raise CliError(f"no merchant {args.merchant} in {table}")
    else:
        merchants, scope = MerchantStore(dynamodb, table).ids(), "every merchant"
    objects = ObjectStore(dynamodb, table)
    outcome = backfill(
        objects,
        merchants,
        walked,
        scope=scope,
        deliveries=WebhookStore(dynamodb, table, objects),
        dry_run=args.dry_run,
        limit=args.limit,
        resume=args.resume,
    )
    _print(outcome, out)
    if outcome.cursor is not None:
        print(
            f"stopped after --limit {args.limit} items; go on with the same options and "
            f"--resume {outcome.cursor}",
            file=out,
        )
    unreadable = [pk for tally in outcome.tallies.values() for pk in tally.unreadable]
    return 1 if unreadable else 0


def _print(outcome: Outcome, out: TextIO) -> None:
    verb = "to update" if outcome.dry_run else "updated"
    empty = []
    for tally in outcome.tallies.values():
        if not tally.scanned:
            empty.append(tally.kind)
            continue
        line = (
            f"{tally.kind}: {tally.scanned} scanned, {tally.updated} {verb}, "
            f"{tally.current} already current, {tally.concurrent} skipped"
        )
        if tally.unreadable:
            line += f", {len(tally.unreadable)} unreadable: {', '.join(tally.unreadable[:10])}"
        print(line, file=out)
    if empty:
        print(f"none stored: {', '.join(empty)}", file=out)
    if any(tally.concurrent for tally in outcome.tallies.values()):
        print(
            "skipped: written by a request meanwhile, which stored its index attributes "
            "itself; the next run checks them again",
            file=out,
        )
    if outcome.dry_run:
        print("dry run: nothing written", file=out)
