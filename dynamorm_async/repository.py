"""``Repository[T]``: the async CRUD, query and scan API for one entity class.

>>> repo = Repository(Payment, client)
>>> await repo.create(Payment(pk="p#1", sk="v", amount=Decimal("9.50")))
>>> p = await repo.get(pk="p#1", sk="v")
>>> p = await repo.update(p, Payment.status.set(Status.PAID))      # partial update
>>> p = await repo.update(attrs.evolve(p, amount=Decimal(12)))      # versioned whole update
>>> async for p in repo.query(Payment.pk == "p#1", filter=Payment.amount > 5): ...

Every request is validated before it is sent: keys against the entity's key schema,
item size against DynamoDB's 400 KB, expressions against the entity's fields.
Methods never mutate the object passed in; they return the stored version.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import attrs

from .attrvalue import Item, check_item_size
from .binding import Target, resolve_binding
from .client import DynamoClient
from .cursor import CursorCodec
from .errors import (
    AlreadyExists,
    ConditionalCheckFailed,
    InvalidInput,
    ItemNotFound,
    VersionConflict,
)
from .expr import Condition, UpdateAction
from .model import EntityMeta, meta_of
from .reads import ReadOps
from .sealing import ItemSealer, MissingSealer, needs_sealer
from .tables import validate_table_name

if TYPE_CHECKING:
    from .batch_writer import BatchWriter

__all__ = ["Repository"]

T = TypeVar("T")

KeyLike = Any  # an entity instance, or a mapping of key field names to values


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.UTC)


class Repository(ReadOps[T]):
    """Async data access for entity class ``entity``.

    ``target`` is a :class:`~dynamorm_async.client.DynamoClient`, a
    :class:`~dynamorm_async.binding.Binding`, or a binding source such as the partner
    registry (resolved on every call, so one repository serves every partner scope).
    ``table_prefix`` is put before the entity's table name when ``target`` is a bare
    client. ``cursor_secret`` signs pagination cursors
    (:class:`~dynamorm_async.cursor.CursorCodec`); ``clock`` supplies
    ``created_at``/``updated_at`` (tz-aware UTC); ``sealer`` encrypts the fields
    declared ``encrypted=True`` (required when there are any).
    """

    def __init__(
        self,
        entity: type[T],
        target: Target,
        *,
        table_prefix: str = "",
        cursor_secret: bytes | str | None = None,
        clock: Callable[[], _dt.datetime] = _utcnow,
        sealer: ItemSealer | None = None,
    ) -> None:
        self.meta: EntityMeta[T] = meta_of(entity)
        self.entity = entity
        self._source = resolve_binding(target, table_prefix)
        self._tables: dict[str, str] = {}
        self._cursors = CursorCodec(cursor_secret)
        self._clock = clock
        if sealer is None and needs_sealer(self.meta):
            raise MissingSealer(
                f"{entity.__name__} has encrypted fields "
                f"({', '.join(f.name for f in self.meta.fields.values() if f.encrypted)}); "
                "pass sealer=FieldEncryptor(...) so they are never stored as plaintext"
            )
        self.sealer = sealer if sealer is not None and needs_sealer(self.meta) else None

    @property
    def client(self) -> DynamoClient:
        """The client of the current binding."""
        return self._source.binding().client

    @property
    def table_name(self) -> str:
        """The table name in the current binding (prefix included)."""
        return self._table(self._source.binding().table_prefix)

    def _table(self, prefix: str) -> str:
        name = self._tables.get(prefix)
        if name is None:
            name = self._tables[prefix] = validate_table_name(prefix + self.meta.table)
        return name

    def _bound(self) -> tuple[DynamoClient, str]:
        b = self._source.binding()
        return b.client, self._table(b.table_prefix)

    def __repr__(self) -> str:
        return f"Repository({self.entity.__name__}, table={self.meta.table!r})"

    # ------------------------------------------------------------------ items

    async def encode_item(self, obj: T, table: str) -> Item:
        """The stored form of ``obj`` for ``table``: encoded, size-checked and sealed.

        Batches and transactions use this, so every write path validates and encrypts
        the same way.
        """
        item = self.meta.encode(obj)
        for ka in self.meta.key_attrs:  # cheap: only a suspect key value is re-checked
            raw = item.get(ka.stored_name, {}).get(ka.type)
            if not raw or (ka.type != "N" and len(raw) > 255):
                self.meta.encode_key(obj)  # raises KeyError_ saying what is wrong
        if self.sealer is not None:
            item = await self.sealer.seal(self.meta, table, item)
        check_item_size(item)
        return item

    async def decode_items(self, items: list[dict[str, Any]], table: str) -> list[T]:
        """Entities from stored items of ``table`` (unsealed first if needed)."""
        if self.sealer is not None:
            items = await self.sealer.unseal(self.meta, table, items)
        decode = self.meta.decode
        return [decode(i) for i in items]

    async def _decode_one(self, item: dict[str, Any] | None, table: str) -> T | None:
        if item is None:
            return None
        if self.sealer is None:
            return self.meta.decode(item)
        return (await self.decode_items([item], table))[0]

    # ------------------------------------------------------------------ helpers

    def _key(self, target: KeyLike) -> dict[str, Any]:
        if isinstance(target, self.entity):
            return self.meta.encode_key(target)
        if isinstance(target, Mapping):
            return self.meta.key_from_kwargs(**target)
        raise InvalidInput(
            f"expected a {self.entity.__name__} or a mapping of its key fields, "
            f"got {type(target).__name__}"
        )

    def _stamp(self, obj: T, *, created: bool) -> T:
        changes: dict[str, Any] = {}
        now = None
        meta = self.meta
        if meta.updated_at is not None:
            now = self._clock()
            changes[meta.updated_at.name] = now
        if meta.created_at is not None and (created or getattr(obj, meta.created_at.name) is None):
            changes[meta.created_at.name] = now or self._clock()
        return attrs.evolve(obj, **changes) if changes else obj  # type: ignore[misc]

    def _refuse_encrypted(self, touched: Iterable[Any]) -> None:
        """Update actions are sent as plain expressions: writing an encrypted field with one
        would store it in plaintext, so it is refused before sending."""
        if self.sealer is None:
            return
        hit = [
            f.name for f in self.meta.fields.values() if f.encrypted and f.stored_name in touched
        ]
        if hit:
            raise InvalidInput(
                f"{self.entity.__name__}: update actions cannot write encrypted fields "
                f"({', '.join(hit)}); write the whole entity (put, or update without actions)"
            )

    def _hash_exists(self) -> Condition:
        return self.meta.path(self.meta.hash_key.field_name).exists()

    async def _decode_old(self, exc: ConditionalCheckFailed, table: str) -> T | None:
        return await self._decode_one(exc.item, table)

    # ------------------------------------------------------------------ get

    async def get(
        self, key: KeyLike | None = None, /, *, consistent: bool = False, **key_fields: Any
    ) -> T | None:
        """The item with this key, or ``None``. Give the key as an entity, a mapping,
        or keyword arguments: ``get(pk="p#1", sk="v")``."""
        target = key if key is not None else key_fields
        client, table = self._bound()
        req: dict[str, Any] = {"TableName": table, "Key": self._key(target)}
        if consistent:
            req["ConsistentRead"] = True
        out = await client.call("GetItem", req)
        return await self._decode_one(out.get("Item"), table)

    async def get_or_raise(
        self, key: KeyLike | None = None, /, *, consistent: bool = False, **key_fields: Any
    ) -> T:
        """Like :meth:`get`, but a missing item raises :class:`ItemNotFound`."""
        found = await self.get(key, consistent=consistent, **key_fields)
        if found is None:
            target = key if key is not None else key_fields
            raise ItemNotFound(f"no {self.entity.__name__} with key {self._key(target)}")
        return found

    # ------------------------------------------------------------------ writes

    @overload
    async def put(
        self, obj: T, *, condition: Condition | None = ..., return_old: Literal[False] = ...
    ) -> T: ...

    @overload
    async def put(
        self, obj: T, *, condition: Condition | None = ..., return_old: Literal[True]
    ) -> T | None: ...

    async def put(
        self, obj: T, *, condition: Condition | None = None, return_old: bool = False
    ) -> T | None:
        """Write ``obj`` whole (replacing any item with its key). Returns the written
        entity, or with ``return_old=True`` the item it replaced (``None`` if none).

        A false ``condition`` raises :class:`~dynamorm_async.errors.ConditionalCheckFailed`.
        ``put`` does not check or change the version; use :meth:`update` for that.
        """
        obj = self._stamp(obj, created=False)
        client, table = self._bound()
        req: dict[str, Any] = {"TableName": table, "Item": await self.encode_item(obj, table)}
        if condition is not None:
            b = self._builder()
            req["ConditionExpression"] = b.condition(condition)
            b.apply(req)
        if return_old:
            req["ReturnValues"] = "ALL_OLD"
        out = await client.call("PutItem", req)
        if return_old:
            return await self._decode_one(out.get("Attributes"), table)
        return obj

    async def create(self, obj: T) -> T:
        """Write ``obj`` only if no item has its key, else raise
        :class:`~dynamorm_async.errors.AlreadyExists`. Sets the version to 1 and both
        timestamps. Returns the stored entity."""
        obj = self._stamp(obj, created=True)
        if self.meta.version is not None:
            obj = attrs.evolve(obj, **{self.meta.version.name: 1})  # type: ignore[misc]
        client, table = self._bound()
        b = self._builder()
        req: dict[str, Any] = {
            "TableName": table,
            "Item": await self.encode_item(obj, table),
            "ConditionExpression": b.condition(
                self.meta.path(self.meta.hash_key.field_name).not_exists()
            ),
        }
        b.apply(req)
        try:
            await client.call("PutItem", req)
        except ConditionalCheckFailed as exc:
            raise AlreadyExists(
                f"a {self.entity.__name__} with key {self.meta.encode_key(obj)} already exists",
                code=exc.code,
                status=exc.status,
                request_id=exc.request_id,
                response=exc.response,
            ) from exc
        return obj

    async def update(
        self, target: KeyLike, *actions: UpdateAction, condition: Condition | None = None
    ) -> T:
        """Update an existing item and return the new stored entity.

        * With ``actions`` (``Payment.status.set(...)``, ``Payment.count.increment()``...):
          a partial UpdateItem on ``target``'s key (an entity or a key mapping). It also
          sets ``updated_at`` and increments the version, if declared.
        * Without actions, ``target`` is a whole entity: it replaces the stored item if the
          stored version equals ``target``'s (optimistic locking), writing version + 1.
          A mismatch raises :class:`~dynamorm_async.errors.VersionConflict` carrying the
          current entity.

        A missing item raises :class:`~dynamorm_async.errors.ItemNotFound`; a false
        ``condition`` raises :class:`~dynamorm_async.errors.ConditionalCheckFailed`.
        """
        if actions:
            return await self._update_actions(target, actions, condition)
        if not isinstance(target, self.entity):
            raise InvalidInput("update() without actions needs a whole entity to write")
        return await self._update_whole(target, condition)

    async def _update_actions(
        self, target: KeyLike, actions: Iterable[UpdateAction], condition: Condition | None
    ) -> T:
        meta = self.meta
        acts = list(actions)
        touched = {a.path.elements[0] for a in acts}
        self._refuse_encrypted(touched)
        if meta.updated_at is not None and meta.updated_at.stored_name not in touched:
            acts.append(meta.path(meta.updated_at.name).set(self._clock()))
        if meta.version is not None and meta.version.stored_name not in touched:
            acts.append(meta.path(meta.version.name).increment(1, initial=0))
        client, table = self._bound()
        b = self._builder()
        cond = self._hash_exists() if condition is None else self._hash_exists() & condition
        req: dict[str, Any] = {
            "TableName": table,
            "Key": self._key(target),
            "UpdateExpression": b.update(acts, protected=[k.stored_name for k in meta.key_attrs]),
            "ConditionExpression": b.condition(cond),
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        b.apply(req)
        try:
            out = await client.call("UpdateItem", req)
        except ConditionalCheckFailed as exc:
            if exc.item is None:
                raise ItemNotFound(
                    f"no {self.entity.__name__} with key {req['Key']} to update"
                ) from exc
            raise
        updated = await self._decode_one(out["Attributes"], table)
        assert updated is not None
        return updated

    async def _update_whole(self, obj: T, condition: Condition | None) -> T:
        meta = self.meta
        cond = self._hash_exists()
        version = meta.version
        if version is not None:
            expected = getattr(obj, version.name)
            cond = cond & (meta.path(version.name) == expected)
            obj = attrs.evolve(obj, **{version.name: (expected or 0) + 1})  # type: ignore[misc]
        if condition is not None:
            cond = cond & condition
        obj = self._stamp(obj, created=False)
        client, table = self._bound()
        b = self._builder()
        req: dict[str, Any] = {
            "TableName": table,
            "Item": await self.encode_item(obj, table),
            "ConditionExpression": b.condition(cond),
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        b.apply(req)
        try:
            await client.call("PutItem", req)
        except ConditionalCheckFailed as exc:
            await self._raise_conflict(exc, obj, version is not None, req["Item"], table)
        return obj

    async def _raise_conflict(
        self,
        exc: ConditionalCheckFailed,
        obj: T,
        versioned: bool,
        item: Mapping[str, Any],
        table: str,
    ) -> None:
        current = await self._decode_old(exc, table)
        key = self.meta.key_from_item(item)
        if current is None:
            raise ItemNotFound(f"no {self.entity.__name__} with key {key}") from exc
        if versioned:
            assert self.meta.version is not None
            name = self.meta.version.name
            stored, mine = getattr(current, name), getattr(obj, name) - 1
            if stored != mine:
                raise VersionConflict(
                    f"{self.entity.__name__} {key}: stored version is {stored}, "
                    f"this update expected {mine}; reload and retry",
                    current=current,
                    code=exc.code,
                    status=exc.status,
                    request_id=exc.request_id,
                    response=exc.response,
                ) from exc
        raise exc

    async def delete(
        self,
        target: KeyLike,
        *,
        condition: Condition | None = None,
        check_version: bool = True,
    ) -> T | None:
        """Delete the item; return the deleted entity (``None`` if there was none).

        When ``target`` is an entity of a versioned class and ``check_version`` is true,
        the stored version must equal ``target``'s (else
        :class:`~dynamorm_async.errors.VersionConflict`).
        """
        meta = self.meta
        cond = condition
        versioned = check_version and meta.version is not None and isinstance(target, self.entity)
        if versioned:
            assert meta.version is not None
            vcond = meta.path(meta.version.name) == getattr(target, meta.version.name)
            cond = vcond if cond is None else vcond & cond
        client, table = self._bound()
        req: dict[str, Any] = {
            "TableName": table,
            "Key": self._key(target),
            "ReturnValues": "ALL_OLD",
        }
        if cond is not None:
            b = self._builder()
            req["ConditionExpression"] = b.condition(cond)
            req["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
            b.apply(req)
        try:
            out = await client.call("DeleteItem", req)
        except ConditionalCheckFailed as exc:
            if versioned:
                current = await self._decode_old(exc, table)
                assert meta.version is not None
                name = meta.version.name
                if current is None or getattr(current, name) != getattr(target, name):
                    raise VersionConflict(
                        f"{self.entity.__name__} {req['Key']}: stored version is "
                        f"{None if current is None else getattr(current, name)}, "
                        f"delete expected {getattr(target, name)}",
                        current=current,
                        code=exc.code,
                        status=exc.status,
                        response=exc.response,
                    ) from exc
            raise
        return await self._decode_one(out.get("Attributes"), table)

    def batch_writer(self, **options: Any) -> BatchWriter[T]:
        """``async with repo.batch_writer() as w: await w.put(obj)``: buffered batch writes
        of this entity (see :class:`~dynamorm_async.batch_writer.BatchWriter` for
        ``concurrency``, ``retry``, ``dedupe`` and ``progress``)."""
        from .batch_writer import BatchWriter, SingleRepository

        return BatchWriter(SingleRepository(self), **options)
