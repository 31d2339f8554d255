"""Statements of the attempt hot path, compiled once instead of by the ORM on every delivery.

Profiling scenario A showed Django building SQL for the claim, the attempt INSERT and the
finishing UPDATE costing more CPU than the database answering them. These helpers build the
same parameterized statements once per (database alias, shape) from the models' `_meta`
(table and column names, quoted by the backend), and prepare values with the fields' own
`get_db_prep_save`, so SQLite and PostgreSQL store exactly what the ORM would.

The database is the one the router picks for writes, like `QuerySet.update()` and `save()`.
"""

from __future__ import annotations

from collections.abc import Mapping

from django.db import connections, router, transaction
from django.db.models import Model

# (alias, model, shape) -> SQL text. Shapes are few (one per call site), so this stays small.
_cache: dict[tuple, str] = {}


def _field(meta, name: str):
    return meta.pk if name == "pk" else meta.get_field(name)


def _where_clause(meta, where: Mapping[str, object], qn) -> tuple[str, tuple]:
    parts = []
    shape = []
    for name, value in where.items():
        column = qn(_field(meta, name).column)
        if isinstance(value, tuple | list | frozenset | set):
            parts.append(f"{column} IN ({', '.join(['%s'] * len(value))})")
            shape.append((name, len(value)))
        else:
            if value is None:
                raise ValueError(f"guarded_update cannot match {name} IS NULL")
            parts.append(f"{column} = %s")
            shape.append((name, None))
    return " AND ".join(parts), tuple(shape)


def guarded_update(
    model: type[Model], where: Mapping[str, object], changes: Mapping[str, object]
) -> int:
    """`UPDATE table SET changes WHERE where` (equality, or IN for a tuple); rows matched.

    The same statement as `Model.objects.filter(**where).update(**changes)` for plain fields.
    """
    alias = router.db_for_write(model)
    connection = connections[alias]
    meta = model._meta
    key = (
        alias,
        meta.label,
        "update",
        tuple(changes),
        tuple(
            (n, len(v) if isinstance(v, tuple | list | frozenset | set) else None)
            for n, v in where.items()
        ),
    )
    sql = _cache.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(_field(meta, name).column)} = %s" for name in changes)
        clause, _shape = _where_clause(meta, where, qn)
        sql = _cache[key] = f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {clause}"
    params: list[object] = [
        _field(meta, name).get_db_prep_save(value, connection) for name, value in changes.items()
    ]
    for name, value in where.items():
        field = _field(meta, name)
        if isinstance(value, tuple | list | frozenset | set):
            params.extend(field.get_db_prep_save(v, connection) for v in value)
        else:
            params.append(field.get_db_prep_save(value, connection))
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def returning_supported(connection) -> bool:
    """Whether INSERT ... RETURNING works here (PostgreSQL; SQLite from 3.35)."""
    return bool(connection.features.can_return_columns_from_insert)


def insert(obj: Model) -> Model:
    """INSERT one new row for `obj` (auto primary key) and set its pk, as `save()` would.

    Runs no model signals: only for models nobody listens to (the attempt rows).
    """
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    meta = model._meta
    auto = meta.auto_field
    fields = [f for f in meta.concrete_fields if f is not auto]
    returning = auto is not None and returning_supported(connection)
    key = (alias, meta.label, "insert", returning)
    sql = _cache.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        values = ", ".join(["%s"] * len(fields))
        sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({values})"
        if returning:
            sql += f" RETURNING {qn(auto.column)}"
        _cache[key] = sql
    params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        if auto is not None:
            pk = cursor.fetchone()[0] if returning else cursor.lastrowid
            setattr(obj, auto.attname, pk)
    obj._state.adding = False
    obj._state.db = alias
    return obj
