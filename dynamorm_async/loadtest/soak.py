"""Soak: the payment processor under load for a bounded time with faults on, then a
check of every stored payment against what the callers were told.

    python -m dynamorm_async.loadtest.soak --duration 300 --fault-rate 0.05 --json soak.json

Between the processor and DynamoDB sits a :class:`~dynamorm_async.testing.faults.FaultProxy`
injecting, at ``fault_rate``, throttling, 500s, connection resets before and after the
request was applied, truncated bodies, CRC mismatches and slow answers. Each load step
creates a payment (sometimes twice, the second must be a duplicate), authorizes and
captures it, and sometimes refunds part of it (sometimes twice with the same refund key).
A :class:`Ledger` keeps what each call answered.

After the run the proxy is bypassed and every payment is checked:

* **lost**: a create, transition or refund that answered success but is not stored;
* **doubled**: two payments for one idempotency key, a refund applied twice, refunded
  totals that differ from the refund records, more audit entries than changes;
* **inconsistent**: a status its Transaction records do not explain, an audit chain that
  does not verify, a stored payment nobody asked for;
* the counts of the load-test report (successful creates) match the ledger.

Exit status 0 when nothing is lost, doubled or inconsistent; 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import itertools
import json
import os
import random
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from ..binding import Binding
from ..db import Database
from ..errors import DynamormError
from ..payments import PaymentProcessor, PaymentRequest, PaymentStatus, ensure_payment_tables
from ..pool import ClientPool
from ..testing.faults import Fault, FaultProxy
from ..wire.retry import RetryPolicy
from .engine import LoadEngine, RunOutcome
from .scenarios.base import Sample, Scenario, ScenarioSettings, timed

__all__ = ["Ledger", "SoakReport", "SoakScenario", "main", "run_soak", "verify"]

MERCHANT = "m-soak"
_ORDER = [
    PaymentStatus.PENDING,
    PaymentStatus.AUTHORIZED,
    PaymentStatus.CAPTURED,
    PaymentStatus.PARTIALLY_REFUNDED,
    PaymentStatus.REFUNDED,
]
_RECORDS = {
    PaymentStatus.PENDING: set(),
    PaymentStatus.AUTHORIZED: {"authorize"},
    PaymentStatus.CAPTURED: {"authorize", "capture"},
    PaymentStatus.PARTIALLY_REFUNDED: {"authorize", "capture"},
    PaymentStatus.REFUNDED: {"authorize", "capture"},
}


def soak_faults() -> list[Fault]:
    """The faults the soak injects (everything but partial batches: the soak sends none)."""
    return [
        Fault.throttle(),
        Fault.server_error(),
        Fault.server_error(503),
        Fault.reset_before(),
        Fault.reset_after(),
        Fault.truncate(),
        Fault.bad_crc(),
        Fault.slow(0.05),
    ]


@attrs.define
class Entry:
    """What the callers were told about one payment (by idempotency key)."""

    amount: int
    created: bool = False  # a create answered success
    status: PaymentStatus | None = None  # the last status a call answered
    refunds_ok: dict[str, int] = attrs.field(factory=dict)  # refund key -> amount, confirmed
    refunds_tried: set[str] = attrs.field(factory=set)


@attrs.define
class Ledger:
    """Every payment key the load asked for and what it was answered."""

    entries: dict[str, Entry] = attrs.field(factory=dict)
    duplicates: int = 0  # repeated creates answered as duplicates
    bad_duplicates: list[str] = attrs.field(factory=list)

    def answered(self, key: str, status: PaymentStatus) -> None:
        """A call on ``key`` answered ``status``."""
        entry = self.entries[key]
        if entry.status is None or _ORDER.index(status) > _ORDER.index(entry.status):
            entry.status = status


class SoakScenario(Scenario):
    """One step: create (maybe twice), authorize, capture, maybe refund (maybe twice)."""

    name = "soak"
    description = "payments with faults, checked afterwards"

    def __init__(self, settings: ScenarioSettings, proc: PaymentProcessor, run_id: str) -> None:
        super().__init__(settings)
        self.proc = proc
        self.run_id = run_id
        self.ledger = Ledger()
        self._ids = itertools.count()

    async def step(self, rng: random.Random) -> list[Sample]:
        """Drive one payment as far as the faults let it go."""
        n = next(self._ids)
        key = f"{self.run_id}-{n}"
        amount = rng.randrange(100, 10_000)
        entry = self.ledger.entries[key] = Entry(amount)
        req = PaymentRequest(MERCHANT, f"c-{n % 97}", amount, "EUR", key)
        samples: list[Sample] = []
        created, s = await timed("create", self.proc.create(req))
        samples.append(s)
        if created is None:
            return samples
        entry.created = True
        self.ledger.answered(key, created.payment.status)
        if rng.random() < 0.1:
            again, s = await timed("create_again", self.proc.create(req))
            samples.append(s)
            if again is not None:
                if again.duplicate and again.payment.payment_id == created.payment.payment_id:
                    self.ledger.duplicates += 1
                else:
                    self.ledger.bad_duplicates.append(key)
        payment = created.payment
        for op in ("authorize", "capture"):
            call = self.proc.authorize if op == "authorize" else self.proc.capture
            moved, s = await timed(op, call(payment.payment_id))
            samples.append(s)
            if moved is None:
                return samples
            payment = moved
            self.ledger.answered(key, payment.status)
        if rng.random() < 0.4:
            refund_key = f"{key}-r"
            part = max(1, amount // rng.choice((2, 3, 1)))
            for _ in range(2 if rng.random() < 0.3 else 1):
                entry.refunds_tried.add(refund_key)
                done, s = await timed(
                    "refund", self.proc.refund(payment.payment_id, part, refund_key=refund_key)
                )
                samples.append(s)
                if done is not None:
                    entry.refunds_ok[refund_key] = part
                    self.ledger.answered(key, done.status)
        return samples


@attrs.define
class SoakReport:
    """The outcome of a soak: load figures, faults injected and the data check."""

    duration: float
    steps: int
    operations: int
    errors: int
    faults: dict[str, int]
    errors_by_class: dict[str, int]
    requests: int
    payments_attempted: int
    payments_confirmed: int
    payments_stored: int
    items_checked: int
    lost: list[str] = attrs.field(factory=list)
    doubled: list[str] = attrs.field(factory=list)
    inconsistent: list[str] = attrs.field(factory=list)
    counts: dict[str, Any] = attrs.field(factory=dict)

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled or inconsistent."""
        return not (self.lost or self.doubled or self.inconsistent)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {**attrs.asdict(self), "ok": self.ok}

    def summary(self) -> str:
        """A few lines for people."""
        rate = self.operations / self.duration if self.duration else 0.0
        faults = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items())) or "none"
        return "\n".join(
            [
                f"soak: {self.duration:.0f} s, {self.steps} steps, {self.operations} operations "
                f"({rate:,.1f}/s), {self.errors} answered with a typed error "
                f"({', '.join(f'{k} {v}' for k, v in sorted(self.errors_by_class.items()))})",
                f"faults injected: {sum(self.faults.values())} of {self.requests} requests "
                f"({faults})",
                f"payments: {self.payments_attempted} attempted, {self.payments_confirmed} "
                f"confirmed, {self.payments_stored} stored; {self.items_checked} items checked",
                f"{len(self.lost)} lost, {len(self.doubled)} doubled, "
                f"{len(self.inconsistent)} inconsistent",
                *[f"  lost: {x}" for x in self.lost[:10]],
                *[f"  doubled: {x}" for x in self.doubled[:10]],
                *[f"  inconsistent: {x}" for x in self.inconsistent[:10]],
            ]
        )


async def verify(proc: PaymentProcessor, ledger: Ledger, report: SoakReport) -> None:
    """Check every stored payment against ``ledger`` (``proc`` must bypass the proxy)."""
    stored: dict[str, list[Any]] = collections.defaultdict(list)
    async for p in proc.payments.scan(consistent=True):
        stored[p.idempotency_key].append(p)
    report.payments_stored = sum(len(v) for v in stored.values())
    for key, found in stored.items():
        if key not in ledger.entries:
            report.inconsistent.append(f"{key}: stored but never asked for")
        if len(found) > 1:
            report.doubled.append(f"{key}: {len(found)} payments")
    checked = 0
    for key, entry in ledger.entries.items():
        found = stored.get(key, [])
        if not found:
            if entry.created:
                report.lost.append(f"{key}: create answered success, nothing stored")
            continue
        p = found[0]
        checked += await _check_payment(proc, key, entry, p, report)
    report.items_checked = checked
    report.payments_confirmed = sum(e.created for e in ledger.entries.values())
    report.payments_attempted = len(ledger.entries)
    for key in ledger.bad_duplicates:
        report.doubled.append(f"{key}: a repeated create was not answered as a duplicate")


async def _check_payment(
    proc: PaymentProcessor, key: str, entry: Entry, p: Any, report: SoakReport
) -> int:
    status: PaymentStatus = p.status
    if entry.status is not None and _ORDER.index(status) < _ORDER.index(entry.status):
        report.lost.append(f"{key}: answered {entry.status.value}, stored {status.value}")
    records = await proc.records(p.payment_id)
    ids = [r.txn_id for r in records]
    base = {i for i in ids if not i.startswith("refund#")}
    refunds = [r for r in records if r.txn_id.startswith("refund#")]
    if base != _RECORDS.get(status, base):
        report.inconsistent.append(f"{key}: status {status.value} with records {sorted(ids)}")
    if len(refunds) > len(entry.refunds_tried):
        report.doubled.append(
            f"{key}: {len(refunds)} refund records, {len(entry.refunds_tried)} keys"
        )
    if len(refunds) < len(entry.refunds_ok):
        report.lost.append(
            f"{key}: {len(entry.refunds_ok)} refunds confirmed, {len(refunds)} stored"
        )
    refunded = sum(r.amount for r in refunds)
    if refunded != p.refunded_amount or p.refundable_amount != p.captured_amount - refunded:
        report.doubled.append(
            f"{key}: refunded {p.refunded_amount}, records {refunded}, "
            f"refundable {p.refundable_amount}, captured {p.captured_amount}"
        )
    chain = await proc.verify(p.payment_id)
    history = await proc.history(p.payment_id)
    if not chain.ok:
        report.inconsistent.append(f"{key}: audit chain does not verify: {chain}")
    if len(history) != 1 + len(records):
        report.doubled.append(f"{key}: {len(history)} audit entries for {len(records)} records")
    return 1 + len(records) + len(history)


async def run_soak(
    endpoint: str,
    *,
    duration: float = 300.0,
    concurrency: int = 16,
    fault_rate: float = 0.05,
    seed: int = 1,
    table_prefix: str = "soak-",
    keep_tables: bool = False,
) -> SoakReport:
    """Run the soak against ``endpoint`` (DynamoDB or a local one) and check the data."""
    from ..payments.tables import delete_payment_tables

    run_id = f"soak{seed}-{os.getpid()}-{random.randrange(1 << 30):x}"
    retry = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.5)
    # the pool closes its connections before the proxy stops
    async with FaultProxy(endpoint, seed=seed) as proxy, ClientPool(retry=retry) as pool:
        direct = Binding(pool.client(endpoint, "us-east-1"), table_prefix)
        via = Binding(pool.client(proxy.endpoint_url, "us-east-1"), table_prefix)
        reports = await ensure_payment_tables(direct)
        secret, audit = b"soak-cursor-secret-0123456789abc", b"soak-audit-secret-0123456789abcd"
        checker = PaymentProcessor(Database(direct, cursor_secret=secret), audit_secret=audit)
        await checker.accounts.add_merchant(MERCHANT, "Soak shop")
        proc = PaymentProcessor(
            Database(via, cursor_secret=secret), audit_secret=audit, max_attempts=10
        )
        scenario = SoakScenario(ScenarioSettings(seed=seed), proc, run_id)
        rule = proxy.chaos(fault_rate, soak_faults(), seed=seed)
        engine = LoadEngine(scenario, concurrency=concurrency, duration=duration, seed=seed)
        outcome: RunOutcome = await engine.run()
        proxy.calm()
        report = SoakReport(
            duration=outcome.elapsed,
            steps=outcome.steps,
            operations=outcome.stats.operations,
            errors=outcome.stats.errors,
            faults=dict(rule.applied),
            errors_by_class=outcome.stats.errors_by_class(),
            requests=sum(proxy.requests.values()),
            payments_attempted=0,
            payments_confirmed=0,
            payments_stored=0,
            items_checked=0,
        )
        await verify(checker, scenario.ledger, report)
        creates = outcome.stats.recorders.get("create")
        ok_creates = creates.count if creates is not None else 0
        report.counts = {
            "report_creates_ok": ok_creates,
            "ledger_creates_ok": report.payments_confirmed,
            "duplicates_answered": scenario.ledger.duplicates,
        }
        if ok_creates != report.payments_confirmed:
            report.inconsistent.append(
                f"load-test report counts {ok_creates} creates, ledger {report.payments_confirmed}"
            )
        if not report.payments_confirmed <= report.payments_stored <= report.payments_attempted:
            report.inconsistent.append("stored payments outside [confirmed, attempted]")
        if not keep_tables and all(r.created for r in reports):
            await delete_payment_tables(direct)
    return report


@contextlib.contextmanager
def _endpoint(url: str | None) -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "soak")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "soak")
    if url:
        yield url
        return
    from ..testing import DynamoDBLocal

    with DynamoDBLocal() as server:
        yield server.endpoint_url


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m dynamorm_async.loadtest.soak``; exit 0 when the data checks out."""
    p = argparse.ArgumentParser(prog="python -m dynamorm_async.loadtest.soak", description=__doc__)
    p.add_argument("--endpoint", help="DynamoDB endpoint (default: start DynamoDB Local)")
    p.add_argument("--duration", type=float, default=300.0, help="seconds of load (300)")
    p.add_argument("--concurrency", type=int, default=16, help="workers (16)")
    p.add_argument("--fault-rate", type=float, default=0.05, help="share of faulted requests")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--table-prefix", default="soak-")
    p.add_argument("--json", metavar="PATH", help="write the report as JSON")
    args = p.parse_args(argv)
    try:
        with _endpoint(args.endpoint) as endpoint:
            report = asyncio.run(
                run_soak(
                    endpoint,
                    duration=args.duration,
                    concurrency=args.concurrency,
                    fault_rate=args.fault_rate,
                    seed=args.seed,
                    table_prefix=args.table_prefix,
                )
            )
    except (DynamormError, OSError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(report.summary())
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(report.as_dict(), fh, indent=2, default=str)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
