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


def _where_params(meta, where: Mapping[str, object], connection) -> list[object]:
    """Parameters for `_where_clause`'s placeholders, prepared as the ORM would save them."""
    params: list[object] = []
    for name, value in where.items():
        field = _field(meta, name)
        if isinstance(value, tuple | list | frozenset | set):
            params.extend(field.get_db_prep_save(v, connection) for v in value)
        else:
            params.append(field.get_db_prep_save(value, connection))
    return params


def _where_clause(meta, where: Mapping[str, object], qn, prefix: str = "") -> tuple[str, tuple]:
    parts = []
    shape = []
    for name, value in where.items():
        column = prefix + qn(_field(meta, name).column)
        if isinstance(value, tuple | list | frozenset | set):
            parts.append(f"{column} IN ({', '.join(['%s'] * len(value))})")
            shape.append((name, len(value)))
        else:
            if value is None:
                raise ValueError(f"guarded_update cannot match {name} IS NULL")
            parts.append(f"{column} = %s")
            shape.append((name, None))
    return " AND ".join(parts), tuple(shape)


def _update_statement(
    model: type[Model],
    where: Mapping[str, object],
    changes: Mapping[str, object],
    connection,
    alias: str,
) -> tuple[str, list[object]]:
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
    params.extend(_where_params(meta, where, connection))
    return sql, params


def guarded_update(
    model: type[Model], where: Mapping[str, object], changes: Mapping[str, object]
) -> int:
    """`UPDATE table SET changes WHERE where` (equality, or IN for a tuple); rows matched.

    The same statement as `Model.objects.filter(**where).update(**changes)` for plain fields.
    """
    alias = router.db_for_write(model)
    connection = connections[alias]
    sql, params = _update_statement(model, where, changes, connection, alias)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def returning_supported(connection) -> bool:
    """Whether INSERT ... RETURNING works here (PostgreSQL; SQLite from 3.35)."""
    return bool(connection.features.can_return_columns_from_insert)


def _insert_statement(obj: Model, connection, alias, returning: bool) -> tuple[str, list]:
    meta = obj._meta
    auto = meta.auto_field
    fields = [f for f in meta.concrete_fields if f is not auto]
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
    return sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _inserted(obj: Model, alias: str, pk: object) -> Model:
    auto = obj._meta.auto_field
    if auto is not None:
        setattr(obj, auto.attname, pk)
    obj._state.adding = False
    obj._state.db = alias
    return obj


def insert(obj: Model) -> Model:
    """INSERT one new row for `obj` (auto primary key) and set its pk, as `save()` would.

    Runs no model signals: only for models nobody listens to (the attempt rows).
    """
    alias = router.db_for_write(type(obj), instance=obj)
    connection = connections[alias]
    auto = obj._meta.auto_field
    returning = auto is not None and returning_supported(connection)
    sql, params = _insert_statement(obj, connection, alias, returning)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        pk = None
        if auto is not None:
            pk = cursor.fetchone()[0] if returning else cursor.lastrowid
    return _inserted(obj, alias, pk)


def insert_then_update(
    obj: Model, model: type[Model], where: Mapping[str, object], changes: Mapping[str, object]
) -> tuple[Model, bool]:
    """INSERT `obj` and run `guarded_update(model, where, changes)`, both or neither.

    Returns the inserted object and whether the UPDATE matched a row. On PostgreSQL this is one
    statement (the INSERT in a WITH clause), so one round trip and no BEGIN/COMMIT; elsewhere it
    is the two statements in a transaction. An IntegrityError from the INSERT leaves both undone.
    The inserted object's pk is only known when the UPDATE matched a row or off PostgreSQL.
    """
    alias = router.db_for_write(model)
    connection = connections[alias]
    one_statement = (
        connection.vendor == "postgresql"
        and obj._meta.auto_field is not None
        and router.db_for_write(type(obj), instance=obj) == alias
    )
    if not one_statement:
        with transaction.atomic(using=alias):
            insert(obj)
            return obj, bool(guarded_update(model, where, changes))
    insert_sql, params = _insert_statement(obj, connection, alias, returning=True)
    update_sql, update_params = _update_statement(model, where, changes, connection, alias)
    key = (alias, "insert_then_update", insert_sql, update_sql)
    sql = _cache.get(key)
    if sql is None:
        qn = connection.ops.quote_name
        pk_column = qn(obj._meta.auto_field.column)
        sql = _cache[key] = (
            f"WITH {qn('inserted')} AS ({insert_sql}) {update_sql} "
            f"RETURNING (SELECT {pk_column} FROM {qn('inserted')})"
        )
    params.extend(update_params)
    with transaction.mark_for_rollback_on_error(using=alias), connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return _inserted(obj, alias, row[0] if row else None), row is not None


def _select_plan(model: type[Model], related: tuple[str, ...], where_key, connection, alias):
    key = (alias, model._meta.label, "select", related, where_key)
    plan = _cache.get(key)
    if plan is not None:
        return plan
    qn = connection.ops.quote_name
    meta = model._meta
    sections = []  # (model, attnames, converters per column)
    columns = []
    joins = []
    for index, name in enumerate(("", *related)):
        table_alias = qn(f"T{index}")
        if name:
            fk = meta.get_field(name)
            target = fk.related_model
            joins.append(
                f"INNER JOIN {qn(target._meta.db_table)} {table_alias} "
                f"ON {qn('T0')}.{qn(fk.column)} = {table_alias}.{qn(fk.target_field.column)}"
            )
        else:
            target = model
        fields = target._meta.concrete_fields
        columns.extend(f"{table_alias}.{qn(f.column)}" for f in fields)
        converters = []
        for f in fields:
            col = f.get_col(f"T{index}")
            # The same converters, in the same order, as SQLCompiler.get_converters().
            found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
            converters.append([(c, col) for c in found])
        sections.append((target, name, [f.attname for f in fields], converters))
    clause, _shape = _where_clause(meta, dict(where_key), qn, prefix=f"{qn('T0')}.")
    sql = (
        f"SELECT {', '.join(columns)} FROM {qn(meta.db_table)} {qn('T0')} "
        f"{' '.join(joins)} WHERE {clause}"
    )
    plan = _cache[key] = (sql, sections)
    return plan


def load_with_related(
    model: type[Model], related: tuple[str, ...], where: Mapping[str, object]
) -> Model | None:
    """The first row matching `where` with its foreign keys `related` in one joined SELECT:
    `model.objects.select_related(*related).filter(**where).first()` without compiling it."""
    alias = router.db_for_read(model)
    connection = connections[alias]
    meta = model._meta
    where_key = tuple(
        (n, tuple(v) if isinstance(v, tuple | list | frozenset | set) else 0)
        for n, v in where.items()
    )
    sql, sections = _select_plan(model, related, where_key, connection, alias)
    params = _where_params(meta, where, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    position = 0
    instances = []
    for target, _name, attnames, converters in sections:
        values = []
        for value, column_converters in zip(row[position:], converters, strict=False):
            for converter, col in column_converters:
                value = converter(value, col, connection)
            values.append(value)
        position += len(attnames)
        instances.append(target.from_db(alias, attnames, values))
    base = instances[0]
    for (_target, name, _attnames, _converters), instance in zip(
        sections[1:], instances[1:], strict=True
    ):
        meta.get_field(name).set_cached_value(base, instance)
    return base
