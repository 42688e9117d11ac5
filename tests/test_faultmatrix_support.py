"""The harness of the fault matrix (no tests here): faults by name, the per-case runner
that checks the generic invariants (typed error when retries run out, no task leaked, no
ResourceWarning), and the table ``operation x fault -> invariant held, cases, items``
written at the end of the session (``$FAULTMATRIX_OUT``, default
``<tmp>/dynamorm-faultmatrix.md``) and printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import os
import tempfile
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from dynamorm_async import RetryPolicy, errors
from dynamorm_async.deadlines import deadline
from dynamorm_async.testing.faults import Fault, FaultProxy

ATTEMPTS = 3
#: Small delays keep the matrix fast; three attempts per request.
POLICY = RetryPolicy(max_attempts=ATTEMPTS, base_delay=0.001, max_delay=0.004)
SLOW_DEADLINE = 0.25

#: The faults of the matrix, by name.
FAULTS: dict[str, Callable[[str | None], Fault]] = {
    "throttle": lambda only: Fault.throttle(only=only),
    "http500": lambda only: Fault.server_error(only=only),
    "reset_before": lambda only: Fault.reset_before(only=only),
    "reset_after": lambda only: Fault.reset_after(only=only),
    "slow_past_deadline": lambda only: Fault.slow(SLOW_DEADLINE * 2, only=only),
    "truncate": lambda only: Fault.truncate(only=only),
    "bad_crc": lambda only: Fault.bad_crc(only=only),
}
#: Faults after which the request WAS applied upstream (only the answer was lost).
APPLIED = frozenset({"reset_after", "slow_past_deadline", "truncate", "bad_crc"})

#: The typed error each fault ends in when every attempt hits it.
EXHAUSTED: dict[str, type[errors.DynamormError]] = {
    "throttle": errors.Throttled,
    "http500": errors.InternalServerError,
    "reset_before": errors.TransportError,
    "reset_after": errors.TransportError,
    "slow_past_deadline": errors.DeadlineExceeded,
    "truncate": errors.TransportError,
    "bad_crc": errors.ChecksumMismatch,
}


@attrs.define
class Row:
    """One cell of the matrix."""

    operation: str
    fault: str
    cases: int = 0
    items: int = 0
    held: bool = True
    notes: set[str] = attrs.field(factory=set)


ROWS: dict[tuple[str, str], Row] = {}


def row(operation: str, fault: str) -> Row:
    """The matrix cell of ``operation`` x ``fault``."""
    return ROWS.setdefault((operation, fault), Row(operation, fault))


@attrs.define
class Outcome:
    """What one faulted run did: its value or error, and the requests the proxy saw."""

    value: Any = None
    error: BaseException | None = None
    requests: int = 0
    forwarded: int = 0


def modes(fault: str) -> tuple[str, ...]:
    """``once``: one fault, the retries recover; ``exhausted``: every attempt faulted.
    A slow answer past the deadline is one mode: the deadline ends the call."""
    return ("once",) if fault == "slow_past_deadline" else ("once", "exhausted")


def faults_for(fault: str, mode: str, only: str | None, exhaust: int = ATTEMPTS) -> list[Fault]:
    """The queued faults of one case (``exhaust`` of them to exhaust every retry)."""
    return [FAULTS[fault](only)] * (exhaust if mode == "exhausted" else 1)


async def run_case(
    proxy: FaultProxy,
    operation: str,
    fault: str,
    mode: str,
    work: Callable[[], Awaitable[Any]],
    *,
    only: str | None = None,
    expect_typed: bool = True,
    after_loss: tuple[type[BaseException], ...] = (),
    exhaust: int = ATTEMPTS,
    chaos: float | None = None,
) -> Outcome:
    """Inject the faults of ``(fault, mode)`` and run ``work``, checking what holds for
    every operation: a failure is a typed error (the exact class when every attempt was
    faulted, if ``expect_typed``), no task is left behind, no ResourceWarning. With one
    fault the call succeeds, or (after a lost answer only) raises one of ``after_loss``."""
    proxy.calm()
    before_tasks = set(asyncio.all_tasks())
    requests, forwarded = sum(proxy.requests.values()), sum(proxy.forwarded.values())
    if chaos is None:
        proxy.inject(*faults_for(fault, mode, only, exhaust))
    else:  # every request (of ``only``) faulted with probability ``chaos``, seeded
        proxy.chaos(chaos, [FAULTS[fault](None)], seed=len(fault), only=only and [only])
    out = Outcome()
    seconds = SLOW_DEADLINE if fault == "slow_past_deadline" else 10.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            with deadline(seconds=seconds):
                out.value = await work()
        except errors.DynamormError as exc:
            out.error = exc
        await asyncio.sleep(0)
        gc.collect()
    proxy.calm()
    out.requests = sum(proxy.requests.values()) - requests
    out.forwarded = sum(proxy.forwarded.values()) - forwarded
    leaked = [
        t for t in asyncio.all_tasks() - before_tasks if not t.done() and not is_proxy_conn(t)
    ]
    assert not leaked, f"{operation}/{fault}/{mode}: tasks leaked: {leaked}"
    resource = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not resource, f"{operation}/{fault}/{mode}: {[str(w.message) for w in resource]}"
    if mode == "exhausted" and expect_typed:
        assert isinstance(out.error, EXHAUSTED[fault]), (operation, fault, repr(out.error))
    if mode == "once" and fault != "slow_past_deadline" and out.error is not None:
        assert fault in APPLIED and isinstance(out.error, after_loss), (
            operation,
            fault,
            repr(out.error),
        )
    if fault == "slow_past_deadline" and expect_typed:
        assert isinstance(out.error, errors.DeadlineExceeded), (operation, repr(out.error))
    return out


def is_proxy_conn(task: asyncio.Task[Any]) -> bool:
    """True for the proxy's server side of a kept-alive connection (not the client's)."""
    return getattr(task.get_coro(), "__qualname__", "") == "FaultProxy._handle"


async def assert_connections_closed(timeout: float = 2.0) -> None:
    """After the client closed: every connection it opened to the proxy is gone."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        open_ = [t for t in asyncio.all_tasks() if is_proxy_conn(t) and not t.done()]
        if not open_ or loop.time() > end:
            break
        await asyncio.sleep(0.01)
    assert not open_, f"{len(open_)} client connection(s) still open after the client closed"


def record(operation: str, fault: str, items: int, note: str | None = None) -> None:
    """Count one passed case of the cell (call after its assertions held)."""
    cell = row(operation, fault)
    cell.cases += 1
    cell.items += items
    if note:
        cell.notes.add(note)


def table() -> str:
    """The matrix as a markdown table."""
    lines = [
        "| operation | fault | invariant held | cases | items checked | notes |",
        "|---|---|---|---|---|---|",
    ]
    for (op, fault), cell in sorted(ROWS.items()):
        held = "yes" if cell.held and cell.cases else "no"
        notes = "; ".join(sorted(cell.notes))
        lines.append(f"| {op} | {fault} | {held} | {cell.cases} | {cell.items} | {notes} |")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def fault_matrix(request: pytest.FixtureRequest) -> Iterator[dict[tuple[str, str], Row]]:
    """The session's matrix; written out and printed when the session ends."""
    yield ROWS
    if not ROWS:
        return
    out = Path(
        os.environ.get("FAULTMATRIX_OUT")
        or os.path.join(tempfile.gettempdir(), "dynamorm-faultmatrix.md")
    )
    text = table()
    out.write_text(text + "\n", encoding="utf-8")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("")
        reporter.write_line(f"fault matrix (also in {out}):")
        for line in text.splitlines():
            reporter.write_line(line)


def counts(values: list[str]) -> collections.Counter[str]:
    """A counter (helper for duplicate checks)."""
    return collections.Counter(values)
