"""Reconciliation: providers' settlement reports (one module of formats), matching them with
PayFlow's charges, refunds and fees and with the bank's payouts, and repairing what is certain.

- `reports`: the normalized settlement row, and each provider's file format (write and parse).
- `bank`: the merchant's bank statement as uploaded (camt.053, PayFlow's CSV), read safely.
- `matching`: the rules, as plain functions over rows and PayFlow's records (no I/O).
- `chalicelib.services.reconciliation`: the Step Functions tasks, the API's operations, repair.
"""

EXCEPTION_EVENT = "payflow.reconciliation.exception_found"
"""Announces an exception a run found (repaired ones too, with their repair)."""
EVENT_TYPES = (EXCEPTION_EVENT,)
