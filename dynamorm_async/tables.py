"""Table management driven by entity metadata: create, ensure, delete, wait, TTL, streams.

>>> await ensure_table(client, Payment)          # idempotent; reports schema drift
>>> await create_table(client, Payment, stream="NEW_AND_OLD_IMAGES")
>>> await delete_table(client, Payment)
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from .binding import Target, resolve_binding
from .client import DynamoClient
from .errors import InvalidInput, ResourceInUse, ResourceNotFound, SchemaMismatch
from .model import EntityMeta, meta_of

__all__ = [
    "BillingMode",
    "StreamView",
    "TableReport",
    "create_table",
    "delete_table",
    "ensure_table",
    "table_definition",
    "validate_table_name",
]

BillingMode = Literal["PAY_PER_REQUEST", "PROVISIONED"]
StreamView = Literal["NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES", "KEYS_ONLY"]

_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.\-]{3,255}$")


def validate_table_name(name: str) -> str:
    """Return ``name`` if DynamoDB accepts it as a table name, else raise ``InvalidInput``."""
    if not isinstance(name, str) or not _TABLE_NAME.match(name):
        raise InvalidInput(
            f"invalid table name {name!r}: DynamoDB needs 3 to 255 characters from "
            "a-z, A-Z, 0-9, '_', '-' and '.'"
        )
    return name


@attrs.frozen
class TableReport:
    """What :func:`ensure_table` found: the table name, whether it created the table, and
    every difference between the declared and the actual schema (empty when they agree)."""

    name: str
    created: bool
    differences: tuple[str, ...] = ()

    @property
    def matches(self) -> bool:
        """True when the table agrees with the entity declaration."""
        return not self.differences


def table_definition(
    entity: type[Any],
    *,
    prefix: str = "",
    billing_mode: BillingMode = "PAY_PER_REQUEST",
    read_capacity: int | None = None,
    write_capacity: int | None = None,
    stream: StreamView | None = None,
) -> dict[str, Any]:
    """The CreateTable request for ``entity`` (with ``prefix`` before the table name)."""
    meta = meta_of(entity)
    name = validate_table_name(prefix + meta.table)
    provisioned = billing_mode == "PROVISIONED"
    if provisioned and not (read_capacity and write_capacity):
        raise InvalidInput("PROVISIONED billing needs read_capacity and write_capacity >= 1")
    if not provisioned and (read_capacity or write_capacity):
        raise InvalidInput("read_capacity/write_capacity apply only to PROVISIONED billing")
    throughput = {"ReadCapacityUnits": read_capacity, "WriteCapacityUnits": write_capacity}
    req: dict[str, Any] = {
        "TableName": name,
        "AttributeDefinitions": meta.attribute_definitions(),
        "KeySchema": meta.key_schema(),
        "BillingMode": billing_mode,
    }
    if provisioned:
        req["ProvisionedThroughput"] = throughput
    gsis = [i.definition() for i in meta.indexes.values() if i.kind == "GSI"]
    lsis = [i.definition() for i in meta.indexes.values() if i.kind == "LSI"]
    if provisioned:
        for g in gsis:
            g["ProvisionedThroughput"] = dict(throughput)
    if gsis:
        req["GlobalSecondaryIndexes"] = gsis
    if lsis:
        req["LocalSecondaryIndexes"] = lsis
    if stream is not None:
        req["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream}
    return req


async def create_table(
    target: Target,
    entity: type[Any],
    *,
    prefix: str = "",
    billing_mode: BillingMode = "PAY_PER_REQUEST",
    read_capacity: int | None = None,
    write_capacity: int | None = None,
    stream: StreamView | None = None,
    wait: bool = True,
) -> dict[str, Any]:
    """Create the entity's table (indexes, TTL, optional stream); wait for ACTIVE.

    Returns the table description. Raises :class:`~dynamorm_async.errors.ResourceInUse`
    if the table exists; use :func:`ensure_table` for create-if-missing. ``target`` is a
    client (``prefix`` applies) or a binding / binding source (its prefix applies).
    """
    client, prefix = _bound(target, prefix)
    meta = meta_of(entity)
    req = table_definition(
        entity,
        prefix=prefix,
        billing_mode=billing_mode,
        read_capacity=read_capacity,
        write_capacity=write_capacity,
        stream=stream,
    )
    out = await client.create_table(**req)
    table: dict[str, Any] = out["TableDescription"]
    if wait or meta.ttl is not None:
        table = await client.wait_for_table_active(req["TableName"])
    if meta.ttl is not None:
        await client.update_time_to_live(
            TableName=req["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": meta.ttl.stored_name},
        )
    return table


async def ensure_table(
    target: Target,
    entity: type[Any],
    *,
    prefix: str = "",
    strict: bool = False,
    **create_options: Any,
) -> TableReport:
    """Create the table if it is missing, else compare it with the declaration.

    Idempotent and safe to run concurrently. With ``strict=True`` a difference raises
    :class:`~dynamorm_async.errors.SchemaMismatch`; otherwise it is reported.
    """
    client, prefix = _bound(target, prefix)
    meta = meta_of(entity)
    name = validate_table_name(prefix + meta.table)
    created = False
    try:
        await client.describe_table(TableName=name)
    except ResourceNotFound:
        try:
            table = await create_table(client, entity, prefix=prefix, **create_options)
            created = True
        except ResourceInUse:  # created concurrently by someone else
            table = await client.wait_for_table_active(name)
    else:
        table = await client.wait_for_table_active(name)
    differences = () if created else tuple(await _differences(client, meta, name, table))
    if strict and differences:
        raise SchemaMismatch(
            f"table {name} differs from {meta.cls.__name__}: " + "; ".join(differences)
        )
    return TableReport(name, created, differences)


async def delete_table(
    target: Target,
    entity: type[Any],
    *,
    prefix: str = "",
    wait: bool = True,
    missing_ok: bool = True,
) -> None:
    """Delete the entity's table (and wait until it is gone)."""
    client, prefix = _bound(target, prefix)
    name = validate_table_name(prefix + meta_of(entity).table)
    try:
        await client.delete_table(TableName=name)
    except ResourceNotFound:
        if not missing_ok:
            raise
        return
    if wait:
        await client.wait_for_table_deleted(name)


def _bound(target: Target, prefix: str) -> tuple[DynamoClient, str]:
    if isinstance(target, DynamoClient):
        return target, prefix
    b = resolve_binding(target).binding()
    return b.client, b.table_prefix + prefix


def _schema(keys: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in keys]


def _projection(p: dict[str, Any]) -> tuple[str, frozenset[str]]:
    return p.get("ProjectionType", "ALL"), frozenset(p.get("NonKeyAttributes") or ())


async def _differences(
    client: DynamoClient, meta: EntityMeta[Any], name: str, table: dict[str, Any]
) -> list[str]:
    diffs: list[str] = []
    if _schema(table.get("KeySchema", [])) != _schema(meta.key_schema()):
        diffs.append(f"key schema is {table.get('KeySchema')}, declared {meta.key_schema()}")
    actual_types = {
        d["AttributeName"]: d["AttributeType"] for d in table.get("AttributeDefinitions", [])
    }
    for d in meta.attribute_definitions():
        got = actual_types.get(d["AttributeName"])
        if got is not None and got != d["AttributeType"]:
            diffs.append(f"attribute {d['AttributeName']} is {got}, declared {d['AttributeType']}")
    actual = {
        i["IndexName"]: (kind, i)
        for kind, key in (("GSI", "GlobalSecondaryIndexes"), ("LSI", "LocalSecondaryIndexes"))
        for i in table.get(key) or []
    }
    for idx in meta.indexes.values():
        found = actual.pop(idx.name, None)
        if found is None:
            diffs.append(f"{idx.kind} {idx.name} is missing")
            continue
        kind, desc = found
        if kind != idx.kind:
            diffs.append(f"index {idx.name} is a {kind}, declared {idx.kind}")
        if _schema(desc.get("KeySchema", [])) != _schema(idx.key_schema()):
            diffs.append(f"index {idx.name} key schema is {desc.get('KeySchema')}")
        want = _projection(idx.projection.to_dict())
        if _projection(desc.get("Projection", {})) != want:
            diffs.append(f"index {idx.name} projection is {desc.get('Projection')}")
    diffs.extend(f"undeclared {kind} {n}" for n, (kind, _) in actual.items())
    if meta.ttl is not None:
        ttl = (await client.describe_time_to_live(TableName=name)).get("TimeToLiveDescription", {})
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or (
            ttl.get("AttributeName") != meta.ttl.stored_name
        ):
            diffs.append(f"TTL is not enabled on {meta.ttl.stored_name}")
    return diffs
