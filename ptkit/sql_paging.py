"""Keyset pages in SQL: the ORDER BY of a :class:`ptkit.paging.Keyset`, the condition
"after this position" and the limit of one more row than the page holds (whether a next
page exists). A keyset page reads only its own rows, however deep it is (no OFFSET),
with an index on the sort columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, true

from ptkit.paging import PageRequest, SortKey

Columns = Mapping[str, ColumnElement[Any]]


def keyset_page(query: Select[Any], columns: Columns, request: PageRequest) -> Select[Any]:
    """``query`` ordered by the request's keyset (``columns`` by sort key name, e.g. a
    table's ``.c``), after its position, limited to ``request.limit`` rows."""
    keys = request.keyset.keys
    query = query.order_by(*(_ordered(columns[key.name], key) for key in keys))
    if request.after is not None:
        query = query.where(_after(columns, keys, request.after))
    return query.limit(request.limit)


def _ordered(column: ColumnElement[Any], key: SortKey) -> ColumnElement[Any]:
    ordered = column.desc() if key.descending else column.asc()
    return ordered.nulls_last() if key.nullable else ordered


def _beyond(column: ColumnElement[Any], key: SortKey, value: Any) -> ColumnElement[bool]:
    """Rows whose ``column`` sorts strictly after ``value`` (nulls last)."""
    if value is None:
        return false()
    beyond = column < value if key.descending else column > value
    return or_(beyond, column.is_(None)) if key.nullable else beyond


def _equal(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def _after(
    columns: Columns, keys: tuple[SortKey, ...], position: tuple[Any, ...]
) -> ColumnElement[bool]:
    """(k1, k2, ...) after (v1, v2, ...) in the keyset's order: k1 beyond v1, or k1 = v1
    and k2 beyond v2, and so on."""
    alternatives = []
    same: list[ColumnElement[bool]] = []
    for key, value in zip(keys, position, strict=True):
        column = columns[key.name]
        alternatives.append(and_(true(), *same, _beyond(column, key, value)))
        same.append(_equal(column, value))
    condition = or_(*alternatives)
    first, first_value = keys[0], position[0]
    if first_value is not None and not first.nullable:
        # implied by the condition, and what lets the database seek on the index
        column = columns[first.name]
        condition = and_(
            column <= first_value if first.descending else column >= first_value, condition
        )
    return condition
