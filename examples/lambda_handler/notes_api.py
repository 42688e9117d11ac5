"""A notes API on AWS Lambda behind API Gateway (REST proxy or HTTP API v2 events).

Routes (``{owner}`` is the path's owner id):

* ``POST   /users/{owner}/notes``        body ``{"text": ..., "tags": [...]}`` -> 201
* ``GET    /users/{owner}/notes``        ``?limit=&cursor=`` -> a page and its cursor
* ``GET    /users/{owner}/notes/{id}``   -> 200, or 404
* ``PUT    /users/{owner}/notes/{id}``   body ``{"text": ..., "version": n}`` -> 200, or 409
* ``DELETE /users/{owner}/notes/{id}``   -> 204, or 404

Lambda handler setting: ``notes_api.handler``. Environment: ``TABLE_PREFIX`` (put before the
table name ``notes``), ``CURSOR_SECRET`` (signs page cursors), ``NOTES_CREATE_TABLE=1``
(create the table at cold start, for development) and, locally,
``AWS_ENDPOINT_URL_DYNAMODB``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import os
import uuid
from typing import Any

import orjson

from dynamorm_async import ClientPool, errors
from dynamorm_async.aws_lambda import lambda_handler
from dynamorm_async.model import entity, field
from dynamorm_async.repository import Repository
from dynamorm_async.tables import ensure_table

MAX_TEXT = 10_000
MAX_PAGE = 100


@entity(
    table="notes",
    hash_key="owner",
    range_key="note_id",
    version="version",
    created_at="created_at",
    updated_at="updated_at",
)
class Note:
    """One note of one owner."""

    owner: str
    note_id: str
    text: str
    tags: set[str] = field(factory=set)
    version: int = 0
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


# Module level: built once per execution environment, warm for every invocation.
POOL = ClientPool()
_notes: Repository[Note] | None = None


def notes() -> Repository[Note]:
    """The notes repository (built on first use, from the environment)."""
    global _notes
    if _notes is None:
        _notes = Repository(
            Note,
            POOL.client(),
            table_prefix=os.environ.get("TABLE_PREFIX", ""),
            cursor_secret=os.environ.get("CURSOR_SECRET", "dev-only-cursor-secret"),
        )
    return _notes


async def init() -> None:
    """Cold start: optionally create the table, and open the first connection."""
    repo = notes()
    if os.environ.get("NOTES_CREATE_TABLE") == "1":
        await ensure_table(repo.client, Note, prefix=os.environ.get("TABLE_PREFIX", ""))


class HttpError(Exception):
    """An error answered to the caller with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def respond(status: int, body: Any = None) -> dict[str, Any]:
    """An API Gateway proxy response with a JSON body."""
    out: dict[str, Any] = {"statusCode": status, "headers": {"content-type": "application/json"}}
    out["body"] = "" if body is None else orjson.dumps(body).decode()
    out["isBase64Encoded"] = False
    return out


def to_json(note: Note) -> dict[str, Any]:
    """The public JSON shape of a note."""
    return {
        "id": note.note_id,
        "owner": note.owner,
        "text": note.text,
        "tags": sorted(note.tags),
        "version": note.version,
        "created_at": note.created_at.isoformat() if note.created_at else None,
        "updated_at": note.updated_at.isoformat() if note.updated_at else None,
    }


def request_parts(event: dict[str, Any]) -> tuple[str, list[str], dict[str, str], Any]:
    """(method, path segments, query parameters, parsed JSON body) of either event version."""
    if event.get("version") == "2.0":
        method = event["requestContext"]["http"]["method"]
        path = event.get("rawPath", "/")
    else:
        method, path = event["httpMethod"], event.get("path", "/")
    body = event.get("body")
    if body and event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raise HttpError(400, "the body is not JSON") from None
    query = event.get("queryStringParameters") or {}
    return method.upper(), [p for p in path.split("/") if p], query, parsed


def note_text(body: Any) -> tuple[str, set[str]]:
    """Validated ``text`` and ``tags`` of a request body."""
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise HttpError(400, 'the body must be an object with a string "text"')
    text, tags = body["text"], body.get("tags", [])
    if not 0 < len(text) <= MAX_TEXT:
        raise HttpError(400, f"text must have 1 to {MAX_TEXT} characters")
    if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
        raise HttpError(400, "tags must be a list of non-empty strings")
    return text, set(tags)


async def route(event: dict[str, Any]) -> dict[str, Any]:
    """Dispatch one request to the repository."""
    method, parts, query, body = request_parts(event)
    if len(parts) < 3 or parts[0] != "users" or parts[2] != "notes" or len(parts) > 4:
        raise HttpError(404, "no such route")
    owner, note_id = parts[1], (parts[3] if len(parts) == 4 else None)
    repo = notes()
    if note_id is None and method == "POST":
        text, tags = note_text(body)
        created = await repo.create(Note(owner, str(uuid.uuid4()), text, tags))
        return respond(201, to_json(created))
    if note_id is None and method == "GET":
        try:
            limit = min(int(query.get("limit", 20)), MAX_PAGE)
        except ValueError:
            raise HttpError(400, "limit must be an integer") from None
        if limit < 1:
            raise HttpError(400, "limit must be >= 1")
        found = repo.query(Note.owner == owner, page_size=limit, cursor=query.get("cursor"))
        async with contextlib.aclosing(found.pages()) as pages:
            page = await anext(pages, None)
        items = [] if page is None else [to_json(n) for n in page.items]
        return respond(200, {"items": items, "cursor": page and page.cursor})
    if note_id is not None and method == "GET":
        return respond(200, to_json(await repo.get_or_raise(owner=owner, note_id=note_id)))
    if note_id is not None and method == "PUT":
        text, tags = note_text(body)
        version = body.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise HttpError(400, 'the body needs the integer "version" it was read at')
        current = await repo.get_or_raise(owner=owner, note_id=note_id, consistent=True)
        changed = Note(owner, note_id, text, tags, version, current.created_at)
        return respond(200, to_json(await repo.update(changed)))
    if note_id is not None and method == "DELETE":
        if await repo.delete({"owner": owner, "note_id": note_id}) is None:
            raise HttpError(404, "no such note")
        return respond(204)
    raise HttpError(405, f"{method} is not allowed here")


@lambda_handler(init=init, safety_margin=0.3)
async def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point (``notes_api.handler``)."""
    try:
        return await route(event)
    except HttpError as exc:
        return respond(exc.status, {"error": str(exc)})
    except errors.ItemNotFound:
        return respond(404, {"error": "no such note"})
    except errors.VersionConflict as exc:
        current = exc.current
        return respond(409, {"error": "changed meanwhile", "current": current and to_json(current)})
    except (errors.InvalidCursor, errors.InvalidInput) as exc:
        return respond(400, {"error": str(exc)})
    except errors.DeadlineExceeded:
        return respond(503, {"error": "try again"})
