"""Codecs of UUIDs and times: ``UUID``, ``datetime`` (ISO text or epoch seconds), ``date``."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..errors import DecodeError, EncodeError
from .codec_base import Gen
from .scalars import Scalar, decimal_from_wire

__all__ = [
    "DateCodec",
    "DatetimeCodec",
    "EpochDatetimeCodec",
    "UUIDCodec",
    "datetime_from_epoch",
    "datetime_from_iso",
    "datetime_to_epoch",
    "datetime_to_iso",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000
_EPOCH_DATE = date(1970, 1, 1)
#: ISO text formatting is the costliest step of encoding a datetime; these tables cut it
#: by about a third: "HH:MM:" by minute of the day, "SS" by second, and a bounded memo
#: of "YYYY-MM-DDT" by day since the epoch (pure values: sharing them changes no result).
_SS = [f"{s:02d}" for s in range(60)]
_HH_MM = [f"{h}:{m}:" for h in _SS[:24] for m in _SS]  # built at import: keep it cheap
_DAY_TEXT: dict[int, str] = {}
_DAY_CACHE_SIZE = 4096
_fromtimestamp = datetime.fromtimestamp


_UUID = uuid.UUID
_new = object.__new__
# The slot descriptors' setters: cheaper than ``object.__setattr__(u, "int", n)``.
_set_int = _UUID.__dict__["int"].__set__
_set_is_safe = _UUID.__dict__["is_safe"].__set__
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def uuid_from_text(text: str) -> uuid.UUID:
    """``uuid.UUID(text)``, without ``UUID.__init__`` for hex text with hyphens.

    ``UUID(text)`` drops ``urn:uuid:``, braces and hyphens, needs 32 characters left
    and parses them with ``int(hex, 16)``. When the text without hyphens already is 32
    characters that ``int(hex, 16)`` takes (so no ``urn:`` or brace was there), the
    result is the same, and this fills the two slots of ``UUID`` directly. Anything
    else goes through ``UUID(text)`` and its checks.
    """
    digits = text.replace("-", "")
    if len(digits) == 32:
        try:
            number = int(digits, 16)
        except ValueError:
            pass
        else:
            value = _new(_UUID)
            _set_int(value, number)
            _set_is_safe(value, _UNKNOWN_SAFETY)
            return value
    return _UUID(text)


class UUIDCodec(Scalar):
    """``uuid.UUID`` as ``S`` (canonical hyphenated text)."""

    tag = "S"
    fast_types = (uuid.UUID,)

    def describe(self) -> str:
        """``UUID``."""
        return "UUID"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        return f"(str({v}) if {v}.__class__ is {g.ref(uuid.UUID, 'UUID')} else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast."""
        return f"{g.ref(uuid_from_text, 'uuid_from_text')}({r})"

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: UUIDs, or text that parses as one."""
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, str):
            try:
                return str(uuid.UUID(value))
            except ValueError:
                raise EncodeError(f"{value!r:.80} is not a UUID", path) from None
        raise self._wrong(value, path)

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        try:
            return uuid.UUID(raw)
        except (TypeError, ValueError, AttributeError):
            raise DecodeError(f"S {raw!r:.80} is not a UUID", path) from None


def datetime_to_iso(value: datetime) -> str:
    """``2024-01-02T03:04:05.123456Z``: UTC, fixed width, so text order is time order."""
    if value.tzinfo is not UTC and value.utcoffset() is None:
        raise EncodeError("naive datetime: give it a timezone (e.g. tzinfo=UTC)")
    delta = value - _EPOCH  # UTC-normalised whatever the zone
    day = _DAY_TEXT.get(delta.days)
    if day is None:
        day = _day_text(delta.days)
    secs = delta.seconds
    return f"{day}{_HH_MM[secs // 60]}{_SS[secs % 60]}.{str(delta.microseconds + _US)[1:]}Z"


def _day_text(days: int) -> str:
    if len(_DAY_TEXT) >= _DAY_CACHE_SIZE:
        _DAY_TEXT.clear()
    text = _DAY_TEXT[days] = (_EPOCH_DATE + timedelta(days=days)).isoformat() + "T"
    return text


def datetime_from_iso(raw: str) -> datetime:
    """Parse ISO-8601 text with an offset (``Z`` included); naive text is an error."""
    d = datetime.fromisoformat(raw)
    if d.tzinfo is None:
        raise ValueError(f"{raw!r} has no UTC offset")
    return d


def datetime_to_epoch(value: datetime) -> str:
    """Epoch seconds as ``N`` text, microseconds kept (``1700000000.5``)."""
    if value.tzinfo is not UTC and value.utcoffset() is None:
        raise EncodeError("naive datetime: give it a timezone (e.g. tzinfo=UTC)")
    delta = value - _EPOCH
    secs = delta.days * 86400 + delta.seconds
    us = delta.microseconds
    if not us:
        return str(secs)
    if secs < 0:  # -1.5 is secs=-2, us=500000
        secs, us = divmod(-(secs * _US + us), _US)
        return f"-{secs}.{us:06d}".rstrip("0") if us else f"-{secs}"
    return f"{secs}.{us:06d}".rstrip("0")


def datetime_from_epoch(raw: str) -> datetime:
    """Inverse of :func:`datetime_to_epoch` (UTC; rounded to the microsecond)."""
    if raw.isdigit():  # the common case: whole seconds since 1970
        try:
            return _fromtimestamp(int(raw), UTC)
        except (OverflowError, OSError, ValueError):
            pass
    secs, dot, frac = raw.partition(".")
    if secs.isdigit() and len(frac) <= 6 and (not dot or frac.isdigit()):
        try:
            d = _fromtimestamp(int(secs), UTC)  # exact for an int
        except (OverflowError, OSError, ValueError):
            pass
        else:
            return d.replace(microsecond=int(frac.ljust(6, "0"))) if dot else d
    # negative, exponent, finer than microseconds, or beyond the platform's time_t
    us = int((Decimal(raw) * _US).to_integral_value())
    return _EPOCH + timedelta(microseconds=us)


class DatetimeCodec(Scalar):
    """Timezone-aware ``datetime`` as ``S``: ISO-8601 UTC text with microseconds and ``Z``."""

    tag = "S"
    fast_types = (datetime,)

    def describe(self) -> str:
        """``datetime``."""
        return "datetime"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        f = g.ref(datetime_to_iso, "iso")
        return f"({f}({v}) if {v}.__class__ is {g.ref(datetime, 'DT')} else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast: ``fromisoformat`` inlined, naive text refused."""
        d = g.var("dt")
        fi = g.ref(datetime.fromisoformat, "fromiso")
        return f"({d} if ({d} := {fi}({r})).tzinfo is not None else _fb())"

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: aware datetimes only."""
        if not isinstance(value, datetime):
            raise self._wrong(value, path)
        try:
            return datetime_to_iso(value)
        except (EncodeError, OverflowError) as exc:
            raise EncodeError(str(exc), path) from None

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        try:
            return datetime_from_iso(raw)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"S is not an ISO-8601 datetime with offset: {exc}", path) from None


class EpochDatetimeCodec(DatetimeCodec):
    """Timezone-aware ``datetime`` as ``N`` epoch seconds (``field(epoch=True)``, TTL)."""

    tag = "N"

    def describe(self) -> str:
        """``datetime (epoch)``."""
        return "datetime (epoch seconds)"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        f = g.ref(datetime_to_epoch, "epoch")
        return f"({f}({v}) if {v}.__class__ is {g.ref(datetime, 'DT')} else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast."""
        return f"{g.ref(datetime_from_epoch, 'fromepoch')}({r})"

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful."""
        if not isinstance(value, datetime):
            raise self._wrong(value, path)
        try:
            return datetime_to_epoch(value)
        except (EncodeError, OverflowError) as exc:
            raise EncodeError(str(exc), path) from None

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        decimal_from_wire(raw, path)
        try:
            return datetime_from_epoch(raw)
        except (ArithmeticError, OverflowError, ValueError) as exc:
            raise DecodeError(f"N {raw!r} is not a datetime in range: {exc}", path) from None


class DateCodec(Scalar):
    """``date`` as ``S`` (``2024-01-02``)."""

    tag = "S"
    fast_types = (date,)

    def describe(self) -> str:
        """``date``."""
        return "date"

    def enc_raw(self, v: str, g: Gen) -> str:
        """Fast."""
        return f"({v}.isoformat() if {v}.__class__ is {g.ref(date, 'Date')} else _fb())"

    def dec_raw(self, r: str, g: Gen) -> str:
        """Fast."""
        return f"{g.ref(date.fromisoformat, 'datefromiso')}({r})"

    def accepts(self, value: Any) -> bool:
        """dates that are not datetimes."""
        return isinstance(value, date) and not isinstance(value, datetime)

    def to_raw(self, value: Any, path: str | None) -> Any:
        """Careful: a datetime is refused (it would lose its time)."""
        if not self.accepts(value):
            raise self._wrong(value, path)
        return value.isoformat()

    def from_raw(self, raw: Any, path: str | None) -> Any:
        """Careful."""
        try:
            return date.fromisoformat(raw)
        except (TypeError, ValueError) as exc:
            raise DecodeError(f"S is not an ISO-8601 date: {exc}", path) from None
