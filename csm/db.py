"""Database-enforced append-only tables.

``append_only("app_table")`` is a migration operation installing triggers that reject UPDATE and
DELETE on every row, on PostgreSQL and on SQLite (the embedded default), so "append-only" does not
depend on the application behaving. ``settable_once=("valid_to",)`` additionally allows exactly one
kind of update: those columns going from NULL to a value while every other column stays the same
(closing a validity range is an append of information, never a rewrite). ``droppable=("payload",
"payload_dropped_at")`` allows one other kind: the data column emptied in the same update that sets the
marker column from NULL, every other column unchanged (retention drops a stored body, keeping its hash and
size; docs/operations.md, "Retention"). Its check lists the table's columns when it is installed (as the
SQLite trigger always does), so a migration adding a column to such a table installs it again.

The PostgreSQL error uses SQLSTATE 42501 (insufficient_privilege); both backends' messages start with
``csm: append-only``.
"""

from django.db import migrations

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION csm_append_only() RETURNS trigger AS $$
DECLARE
    settable text[] := TG_ARGV;
    col text;
    old_rest jsonb;
    new_rest jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND array_length(settable, 1) IS NOT NULL THEN
        old_rest := to_jsonb(OLD);
        new_rest := to_jsonb(NEW);
        FOREACH col IN ARRAY settable LOOP
            IF NOT (old_rest -> col = 'null'::jsonb OR old_rest -> col = new_rest -> col) THEN
                RAISE EXCEPTION 'csm: append-only: % may be set only once on %', col, TG_TABLE_NAME
                    USING ERRCODE = '42501';
            END IF;
            old_rest := old_rest - col;
            new_rest := new_rest - col;
        END LOOP;
        IF old_rest = new_rest THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'csm: append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END
$$ LANGUAGE plpgsql;
"""


_PG_DROPPABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.{marker} IS NULL AND NEW.{marker} IS NOT NULL AND octet_length(NEW.{data}) = 0
       AND ROW({old_rest}) IS NOT DISTINCT FROM ROW({new_rest}) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'csm: append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END
$$ LANGUAGE plpgsql;
"""


def _columns(cursor, connection, table: str) -> list[str]:
    return [column.name for column in connection.introspection.get_table_description(cursor, table)]


def _install(table: str, settable_once: tuple[str, ...], droppable: tuple[str, str] | None = None):
    if droppable and settable_once:
        raise ValueError("append_only: droppable and settable_once are not combined")

    def forwards(apps, schema_editor):
        connection = schema_editor.connection
        quote = schema_editor.quote_name
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(_PG_FUNCTION)
                function = "csm_append_only"
                args = ", ".join(f"'{col}'" for col in settable_once)
                if droppable:
                    # Its own function naming the columns: the generic one's to_jsonb(OLD) would read (and
                    # hex-encode) the whole stored body of every row emptied.
                    data, marker = droppable
                    rest = [quote(c) for c in _columns(cursor, connection, table) if c not in droppable]
                    function = f"csm_append_only_{table}"
                    cursor.execute(_PG_DROPPABLE_FUNCTION.format(
                        function=function, data=quote(data), marker=quote(marker),
                        old_rest=", ".join(f"OLD.{c}" for c in rest), new_rest=", ".join(f"NEW.{c}" for c in rest)))
                    args = ""
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {quote(table)}")
                cursor.execute(
                    f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {quote(table)} "
                    f"FOR EACH ROW EXECUTE FUNCTION {function}({args})"
                )
            elif connection.vendor == "sqlite":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
                cursor.execute(
                    f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {quote(table)} "
                    f"BEGIN SELECT RAISE(ABORT, 'csm: append-only: DELETE on {table} is not allowed'); END"
                )
                condition = "1"
                if settable_once:
                    cursor.execute(f"PRAGMA table_info({quote(table)})")
                    columns = [row[1] for row in cursor.fetchall()]
                    same = [f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in columns if c not in settable_once]
                    once = [f"(OLD.{quote(c)} IS NULL OR OLD.{quote(c)} IS NEW.{quote(c)})" for c in settable_once]
                    condition = "NOT (" + " AND ".join(same + once) + ")"
                if droppable:
                    data, marker = droppable
                    same = [f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in _columns(cursor, connection, table)
                            if c not in droppable]
                    condition = (f"NOT ({' AND '.join(same)} AND OLD.{quote(marker)} IS NULL "
                                 f"AND NEW.{quote(marker)} IS NOT NULL AND length(NEW.{quote(data)}) = 0)")
                cursor.execute(
                    f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {quote(table)} WHEN {condition} "
                    f"BEGIN SELECT RAISE(ABORT, 'csm: append-only: UPDATE on {table} is not allowed'); END"
                )
            else:  # pragma: no cover - only PostgreSQL and SQLite are supported
                raise NotImplementedError(f"append-only triggers for {connection.vendor}")

    def backwards(apps, schema_editor):
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {schema_editor.quote_name(table)}")
            else:
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
                cursor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")

    return forwards, backwards


def append_only(table: str, settable_once: tuple[str, ...] = (),
                droppable: tuple[str, str] | None = None) -> migrations.RunPython:
    """Migration operation: make ``table`` append-only (see module docstring)."""
    forwards, backwards = _install(table, settable_once, droppable)
    return migrations.RunPython(forwards, backwards, elidable=False)


def is_append_only_violation(error: Exception) -> bool:
    return "csm: append-only" in str(error)
