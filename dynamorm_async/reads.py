"""The read half of :class:`~dynamorm_async.repository.Repository`: query, scan, count.

Requests are built and validated here (index, key condition, filter, projection,
consistency); the results are :mod:`dynamorm_async.query` objects, so nothing is sent
until they are iterated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from .attrvalue import Item
from .client import DynamoClient
from .cursor import CursorCodec
from .errors import InvalidInput
from .expr import Condition, ExpressionBuilder, Path
from .model import EntityMeta
from .query import ParallelScan, Query, Scan, check_cursor_segments
from .sealing import ItemSealer

__all__ = ["ReadOps"]

T = TypeVar("T")


class ReadOps(Generic[T]):
    """Query, scan and count for one entity; mixed into ``Repository``."""

    meta: EntityMeta[T]
    entity: type[T]
    sealer: ItemSealer | None
    _cursors: CursorCodec

    _bound: Callable[[], tuple[DynamoClient, str]]  # the repository's current binding

    def _builder(self) -> ExpressionBuilder:
        return ExpressionBuilder(entity=self.entity)

    def _reader(
        self,
        kind: type[Query[Any]],
        client: DynamoClient,
        table: str,
        request: dict[str, Any],
        count_request: dict[str, Any],
        key_of: Callable[[Mapping[str, Any]], dict[str, Any]],
        projection: Iterable[Path | str] | None,
        *,
        limit: int | None,
        cursor: str | None,
    ) -> Query[Any]:
        decode: Callable[[dict[str, Any]], Any] = (
            self.meta.decode if projection is None else self._partial
        )
        return kind(
            client,
            request,
            decode,
            key_of,
            self._cursors,
            limit=limit,
            cursor=cursor,
            count_request=count_request,
            prepare=self._prepare(table),
        )

    def _read_request(
        self,
        table: str,
        *,
        index: str | None,
        key_condition: Condition | None,
        filter: Condition | None,
        projection: Iterable[Path | str] | None,
        consistent: bool,
        page_size: int | None,
        reverse: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any], Callable[[Mapping[str, Any]], dict[str, Any]]]:
        meta = self.meta
        req: dict[str, Any] = {"TableName": table}
        hash_key, range_key = meta.hash_key, meta.range_key
        key_of: Callable[[Mapping[str, Any]], dict[str, Any]] = meta.key_from_item
        if index is not None:
            idx = meta.index(index)
            req["IndexName"] = index
            hash_key, range_key = idx.hash_key, idx.range_key
            key_of = lambda item: meta.index_key_from_item(index, item)  # noqa: E731
            if consistent and idx.kind == "GSI":
                raise InvalidInput(
                    f"index {index} is a GSI: DynamoDB has no consistent reads on GSIs"
                )
            if idx.projection.type != "ALL" and projection is None:
                raise InvalidInput(
                    f"index {index} projects {idx.projection.type}, so its items are not whole "
                    f"{self.entity.__name__} entities: pass projection=[...] to read them as dicts"
                )
        if page_size is not None:
            if page_size < 1:
                raise InvalidInput("page_size must be >= 1")
            req["Limit"] = page_size
        if consistent:
            req["ConsistentRead"] = True
        if reverse:
            req["ScanIndexForward"] = False
        b = self._builder()
        if key_condition is not None:
            req["KeyConditionExpression"] = b.key_condition(
                key_condition,
                hash_key=hash_key.stored_name,
                range_key=None if range_key is None else range_key.stored_name,
            )
        if filter is not None:
            req["FilterExpression"] = b.condition(filter)
        count_req = b.apply(dict(req))
        if projection is not None:
            paths = [meta.path(p) if isinstance(p, str) else p for p in projection]
            keys = [meta.path(k.field_name) for k in meta.key_attrs]
            if index is not None:
                keys += [meta.path(k.field_name) for k in meta.index(index).keys]
            wanted = {p.elements: p for p in [*paths, *keys]}
            req["ProjectionExpression"] = b.projection(list(wanted.values()))
        b.apply(req)
        return req, dict(count_req), key_of

    def _prepare(
        self, table: str
    ) -> Callable[[list[dict[str, Any]]], Awaitable[list[Item]]] | None:
        sealer = self.sealer
        if sealer is None:
            return None
        meta = self.meta

        async def unseal(items: list[dict[str, Any]]) -> list[Item]:
            return await sealer.unseal(meta, table, items)

        return unseal

    def _partial(self, item: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for stored, av in item.items():
            f = self.meta.field_for_stored(stored)
            if f is not None:
                out[f.name] = f.decode_value(av)
        return out

    def query(
        self,
        key_condition: Condition,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        limit: int | None = None,
        reverse: bool = False,
        projection: Iterable[Path | str] | None = None,
        consistent: bool = False,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> Query[Any]:
        """A Query on the table or ``index``: iterate it for entities (or, with
        ``projection``, dicts of the projected fields), or use ``.pages()``,
        ``.first()``, ``.count()``, ``.to_list()``.

        ``key_condition`` needs hash-key equality and at most one range-key condition
        (``==``, ``<``, ``<=``, ``>``, ``>=``, ``between``, ``begins_with``) on the keys
        of the table or index. ``cursor`` resumes after a page's ``cursor``.
        """
        client, table = self._bound()
        req, count_req, key_of = self._read_request(
            table,
            index=index,
            key_condition=key_condition,
            filter=filter,
            projection=projection,
            consistent=consistent,
            page_size=page_size,
            reverse=reverse,
        )
        return self._reader(
            Query, client, table, req, count_req, key_of, projection, limit=limit, cursor=cursor
        )

    def scan(
        self,
        *,
        filter: Condition | None = None,
        index: str | None = None,
        limit: int | None = None,
        projection: Iterable[Path | str] | None = None,
        consistent: bool = False,
        page_size: int | None = None,
        segments: int = 1,
        cursor: str | None = None,
        cursors: Mapping[int, str | None] | None = None,
    ) -> Query[Any] | ParallelScan[Any]:
        """A Scan of the table or ``index``, optionally split into ``segments`` that run
        concurrently and merge into one iterator (bounded buffering).

        A plain scan resumes with ``cursor``; a parallel scan with ``cursors`` mapping a
        segment to its last page's cursor (``None`` for a finished segment).
        """
        if not 1 <= segments <= 1_000_000:
            raise InvalidInput("segments must be between 1 and 1,000,000")
        client, table = self._bound()
        req, count_req, key_of = self._read_request(
            table,
            index=index,
            key_condition=None,
            filter=filter,
            projection=projection,
            consistent=consistent,
            page_size=page_size,
        )
        if segments == 1:
            if cursors:
                raise InvalidInput("cursors= is for parallel scans; use cursor=")
            return self._reader(
                Scan, client, table, req, count_req, key_of, projection, limit=limit, cursor=cursor
            )
        if cursor is not None:
            raise InvalidInput("a parallel scan resumes with cursors={segment: cursor}")
        resume = dict(cursors or {})
        check_cursor_segments(resume, segments)
        parts: list[Query[Any]] = []
        for seg in range(segments):
            if seg in resume and resume[seg] is None:
                continue  # finished before
            where = {"Segment": seg, "TotalSegments": segments}
            parts.append(
                self._reader(
                    Scan,
                    client,
                    table,
                    {**req, **where},
                    {**count_req, **where},
                    key_of,
                    projection,
                    limit=None,
                    cursor=resume.get(seg),
                )
            )
        return ParallelScan(parts, limit=limit)

    async def count(
        self,
        key_condition: Condition | None = None,
        *,
        index: str | None = None,
        filter: Condition | None = None,
        consistent: bool = False,
    ) -> int:
        """How many items match: a Query count with ``key_condition``, else a Scan count."""
        if key_condition is None:
            return await self.scan(index=index, filter=filter, consistent=consistent).count()
        return await self.query(
            key_condition, index=index, filter=filter, consistent=consistent
        ).count()
