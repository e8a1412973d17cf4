"""Request parameters of the reconciliation routes (shared types from params)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from chalicelib.api.params import Identifier, Integer, ListParams, Params
from chalicelib.connectors.simulator_settlement import Discrepancy
from chalicelib.reconciliation.bank import StatementFormat
from chalicelib.reconciliation.matching import ExceptionKind, ExceptionStatus, Resolution


def _date(value: object) -> str:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    raise PydanticCustomError(
        "parameter_invalid_date", "Invalid date: {value}. Use YYYY-MM-DD.", {"value": value}
    )


Day = Annotated[str, BeforeValidator(_date), WithJsonSchema({"type": "string", "format": "date"})]
"""A UTC day, YYYY-MM-DD (the reference says `format: date`, which is what the check takes)."""


class CreateRun(Params):
    date: Day
    """The UTC day whose settlements to reconcile."""
    sla_days: Annotated[Integer, Field(ge=0, le=30)] = 3
    """How many days after `date` a booking may still await its settlement (T+3)."""


class ListRuns(ListParams):
    pass


class ListExceptions(ListParams):
    status: ExceptionStatus | None = None
    kind: ExceptionKind | None = None
    run: Identifier | None = None


class ResolveException(Params):
    resolution: Resolution


class InjectDiscrepancies(Params):
    date: Day
    connector: Identifier = "simulator"
    seed: Integer = 0
    count: Annotated[Integer, Field(ge=1, le=10_000)] = 5
    kinds: list[Discrepancy] | None = None
    """Discrepancy kinds to take in turn (default: every kind but bank_short)."""


class UploadBankStatement(Params):
    file: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    """The statement file's text: ISO 20022 camt.053 XML, or PayFlow's bank CSV."""
    format: StatementFormat | None = None
    """`camt.053` or `csv`; when absent, XML is read as camt.053 and anything else as CSV."""


class ListBankStatements(ListParams):
    pass
