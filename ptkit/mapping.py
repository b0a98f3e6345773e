"""Row mapping derived from an aggregate's dataclass fields, so each field is written
once, in ``domain/``: the table's columns, the loader and the values an insert or an
update writes all come from ``dataclasses.fields()`` and the annotations.

Column types follow the annotation: ``str`` → Text, ``int`` → Integer, ``float`` →
Float, ``bool`` → Boolean, ``datetime`` → timezone-aware DateTime (read back as UTC),
an ``enum.Enum`` → its value as a string, ``dict``/``list``/``tuple`` → JSON (tuples
come back as tuples, as the annotation says), ``X | None`` → nullable. The adapter adds
only what the annotation cannot say: the table name and key, indexes and constraints,
a column type (``String(36)``), a :class:`Stored` conversion, or an :class:`Embedded`
value object kept in several columns.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.types import TypeEngine

A = TypeVar("A")

NOT_STORED = frozenset({"events"})
"""Fields of every aggregate that are not state: the events recorded since the load."""


def _same(value: Any) -> Any:
    return value


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time in PtPlatform is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Stored:
    """How one field is stored where its annotation alone does not say: the column
    type, whether it may be NULL, and the conversions of the value on its way in and out
    (e.g. an empty ``request_id`` stored as NULL, so a unique constraint ignores it)."""

    type: TypeEngine[Any] | None = None
    nullable: bool | None = None
    write: Callable[[Any], Any] | None = None
    read: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class Embedded:
    """A value object kept in several columns: ``write`` gives their values for the
    field's value, ``read`` rebuilds the value from the row (derived columns, such as a
    slot's end kept for a query, are written and never read)."""

    columns: tuple[Column[Any], ...]
    write: Callable[[Any], Mapping[str, object]]
    read: Callable[[Row[Any]], Any]


Override = TypeEngine[Any] | Stored | Embedded


@dataclass(frozen=True)
class _Field:
    name: str
    columns: tuple[Column[Any], ...]
    write: Callable[[Any], Mapping[str, object]]
    read: Callable[[Row[Any]], Any]


class AggregateMapper(Generic[A]):
    """The table of an aggregate and the translation between its rows and instances.

    ``AggregateMapper(Order, "orders", metadata, Index(...), key="order_id",
    columns={"order_id": String(36)})`` declares the table; :meth:`values` gives the row
    of an aggregate, :meth:`load` the aggregate of a row.
    """

    def __init__(
        self,
        aggregate: type[A],
        name: str,
        metadata: MetaData,
        *table_items: SchemaItem,
        key: str,
        columns: Mapping[str, Override] | None = None,
        exclude: frozenset[str] = NOT_STORED,
    ) -> None:
        overrides = dict(columns or {})
        hints = typing.get_type_hints(aggregate)
        stored = [f for f in dataclasses.fields(aggregate) if f.name not in exclude]  # type: ignore[arg-type]
        # key first, version last: the order a reader of the schema expects
        stored.sort(key=lambda f: (f.name != key, f.name == "version"))
        self.aggregate = aggregate
        self.key = key
        self._fields = [
            _field(f, hints[f.name], overrides.pop(f.name, None), f.name == key) for f in stored
        ]
        if overrides:
            raise ValueError(f"{aggregate.__name__} has no fields {sorted(overrides)}")
        self.table = Table(
            name,
            metadata,
            *(column for field in self._fields for column in field.columns),
            *table_items,
        )

    @functools.cached_property
    def insert(self) -> Insert:
        """``INSERT`` of one row, its values given at execution: built (and its cache key
        computed) once, not per call."""
        return insert(self.table)

    @functools.cached_property
    def by_key(self) -> Select[Any]:
        """``SELECT`` of the row whose key is ``:_key``."""
        return select(self.table).where(self.table.c[self.key] == bindparam("_key"))

    @functools.cached_property
    def update(self) -> Update:
        """``UPDATE ... WHERE key = :_key AND version = :_expected``, its new values given
        at execution (optimistic locking)."""
        return update(self.table).where(
            self.table.c[self.key] == bindparam("_key"),
            self.table.c.version == bindparam("_expected"),
        )

    def values(self, aggregate: A) -> dict[str, object]:
        """Every column of the aggregate's row."""
        row: dict[str, object] = {}
        for field in self._fields:
            row.update(field.write(getattr(aggregate, field.name)))
        return row

    def load(self, row: Row[Any]) -> A:
        return self.aggregate(**{field.name: field.read(row) for field in self._fields})


def _field(
    spec: dataclasses.Field[Any], annotation: Any, override: Override | None, key: bool
) -> _Field:
    name = spec.name
    if isinstance(override, Embedded):
        return _Field(name, override.columns, override.write, override.read)
    if isinstance(override, TypeEngine):
        override = Stored(type=override)
    override = override or Stored()
    kind, optional = _unwrap_optional(annotation)
    column_type, to_db, from_db = _by_annotation(name, kind, override.type)
    if override.write is not None:
        to_db = override.write
    if override.read is not None:
        from_db = override.read
    nullable = optional if override.nullable is None else override.nullable

    def to_column(value: Any) -> object:
        # a conversion of its own also decides what None is stored as (e.g. "")
        if value is None and override.write is None:
            return None
        return to_db(value)

    # the field's default is the column's (on the Python side, so no schema change): a row
    # inserted by other means than the mapper gets what a new aggregate would hold
    default = None if spec.default is dataclasses.MISSING else to_column(spec.default)
    column = Column(
        name, column_type, primary_key=key, nullable=nullable and not key, default=default
    )

    def write(value: Any) -> Mapping[str, object]:
        return {name: to_column(value)}

    def read(row: Row[Any]) -> Any:
        value = row._mapping[name]
        return from_db(value) if value is not None or override.read is not None else None

    return _Field(name, (column,), write, read)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        if len(members) == 1:
            return members[0], optional
    return annotation, False


def _by_annotation(
    name: str, kind: Any, column_type: TypeEngine[Any] | None
) -> tuple[TypeEngine[Any], Callable[[Any], Any], Callable[[Any], Any]]:
    """Column type, conversion to the database and back, for one annotation."""
    origin = typing.get_origin(kind) or kind
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        longest = max((len(str(member.value)) for member in origin), default=1)
        return column_type or String(max(32, longest)), _enum_value, origin
    if origin is datetime:
        return column_type or DateTime(timezone=True), _same, as_utc
    if origin in (dict, list, tuple):
        return column_type or JSON(), _same, lambda value: _revive(kind, value)
    simple: dict[Any, TypeEngine[Any]] = {
        str: Text(),
        bool: Boolean(),
        int: Integer(),
        float: Float(),
    }
    if origin in simple:
        return column_type or simple[origin], _same, _same
    if column_type is None:
        raise TypeError(
            f"field {name!r}: no column type for {kind!r}; declare one (Stored or Embedded)"
        )
    return column_type, _same, _same


def _enum_value(member: enum.Enum) -> object:
    return member.value


def _revive(kind: Any, value: Any) -> Any:
    """JSON keeps lists where the annotation says tuple: give the annotated shape back."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is dict and len(args) == 2:
        return {key: _revive(args[1], item) for key, item in value.items()}
    if origin is list and args:
        return [_revive(args[0], item) for item in value]
    if origin is tuple and args:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_revive(args[0], item) for item in value)
        return tuple(_revive(arg, item) for arg, item in zip(args, value, strict=True))
    return value
