"""``payments``: the payment processor of issue 8 under load.

This is the one module where :class:`PaymentProcessor` (``dynamorm_async.payments``)
plugs into the load test: a step creates a payment (idempotent by key), authorizes and
captures it, and sometimes refunds it, each call timed as one operation.

The processor is not part of this installation yet, so :func:`scenario_class` raises
:class:`~.base.ScenarioUnavailable` naming what is missing. Nothing here stands in for
the processor: a load test of a fake would measure nothing.
"""

from __future__ import annotations

import importlib

from .base import Scenario, ScenarioUnavailable

__all__ = ["scenario_class"]

_PROCESSOR = "dynamorm_async.payments"


def _unavailable() -> ScenarioUnavailable:
    try:
        module = importlib.import_module(_PROCESSOR)
    except ModuleNotFoundError as exc:
        if exc.name != _PROCESSOR:
            raise  # the package exists but one of its own imports is broken
        return ScenarioUnavailable(
            "the payments scenario needs the PaymentProcessor of dynamorm_async.payments, "
            "which is not available in this installation; run --scenario mixed or batch"
        )
    if not hasattr(module, "PaymentProcessor"):
        return ScenarioUnavailable(
            f"{_PROCESSOR} has no PaymentProcessor; the payments scenario cannot run"
        )
    return ScenarioUnavailable(
        f"{_PROCESSOR}.PaymentProcessor exists but the load-test scenario that drives it "
        "(dynamorm_async/loadtest/scenarios/payments.py) has not been written yet"
    )


def scenario_class() -> type[Scenario]:
    """The payments scenario class; for now always :class:`ScenarioUnavailable`."""
    raise _unavailable()
