"""Database-enforced append-only tables.

``append_only("app_table")`` is a migration operation installing triggers that reject UPDATE and
DELETE on every row, on PostgreSQL and on SQLite (the embedded default), so "append-only" does not
depend on the application behaving. ``settable_once=("valid_to",)`` additionally allows exactly one
kind of update: those columns going from NULL to a value while every other column stays the same
(closing a validity range is an append of information, never a rewrite). ``droppable=("payload",
"payload_dropped_at")`` allows one other kind: the data column (or each of a tuple of them) emptied in the
same update that sets the marker column from NULL, every other column unchanged (retention drops a stored
body, keeping its hash and size; docs/operations.md, "Retention").

``erasable=(("actor_label", "after"), "erasures")`` allows the erasure of a person (docs/operations.md,
"Erasure of a person"): the listed personal columns may change only in an update that raises the counter
column by exactly one, every other column unchanged (settable-once columns keep their rule; a droppable
table allows it as a second kind of update). The journal leaf committed to those values as keyed hashes
(journal/personal.py), so verify_audit still holds. The droppable and erasable checks list the table's
columns when they are installed (as the SQLite trigger always does), so a migration adding a column to such
a table installs them again.

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
    IF TG_OP = 'UPDATE' AND OLD.{marker} IS NULL AND NEW.{marker} IS NOT NULL AND {emptied}
       AND ROW({old_rest}) IS NOT DISTINCT FROM ROW({new_rest}) THEN
        RETURN NEW;
    END IF;
{erase}    RAISE EXCEPTION 'csm: append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END
$$ LANGUAGE plpgsql;
"""

_PG_DROPPABLE_ERASE = """    IF TG_OP = 'UPDATE' AND NEW.{counter} = OLD.{counter} + 1
       AND ROW({old_rest}) IS NOT DISTINCT FROM ROW({new_rest}) THEN
        RETURN NEW;
    END IF;
"""


_PG_ERASABLE_FUNCTION = """
CREATE OR REPLACE FUNCTION csm_append_only_erasable() RETURNS trigger AS $$
DECLARE
    counter text := TG_ARGV[0];
    arg text;
    col text;
    old_rest jsonb;
    new_rest jsonb;
    erased boolean := false;
    has_once boolean := false;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        old_rest := to_jsonb(OLD);
        new_rest := to_jsonb(NEW);
        FOREACH arg IN ARRAY TG_ARGV[1:] LOOP
            col := substr(arg, 6);
            IF left(arg, 5) = 'once:' THEN
                has_once := true;
                IF NOT (old_rest -> col = 'null'::jsonb OR old_rest -> col = new_rest -> col) THEN
                    RAISE EXCEPTION 'csm: append-only: % may be set only once on %', col, TG_TABLE_NAME
                        USING ERRCODE = '42501';
                END IF;
            ELSIF old_rest -> col IS DISTINCT FROM new_rest -> col THEN
                erased := true;
            END IF;
            old_rest := old_rest - col;
            new_rest := new_rest - col;
        END LOOP;
        IF (erased OR old_rest -> counter IS DISTINCT FROM new_rest -> counter)
           AND (new_rest ->> counter)::bigint IS DISTINCT FROM (old_rest ->> counter)::bigint + 1 THEN
            RAISE EXCEPTION 'csm: append-only: an erasure on % must raise % by one', TG_TABLE_NAME, counter
                USING ERRCODE = '42501';
        END IF;
        -- a counted erasure, or (on a table with settable-once columns) setting them; never a bare no-op
        IF old_rest - counter = new_rest - counter
           AND (has_once OR (new_rest ->> counter)::bigint = (old_rest ->> counter)::bigint + 1) THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'csm: append-only: % on % is not allowed', TG_OP, TG_TABLE_NAME
        USING ERRCODE = '42501';
END
$$ LANGUAGE plpgsql;
"""


def _columns(cursor, connection, table: str) -> list[str]:
    return [column.name for column in connection.introspection.get_table_description(cursor, table)]


def _install(table: str, settable_once: tuple[str, ...], droppable: tuple | None = None,
             erasable: tuple[tuple[str, ...], str] | None = None):
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
                    data = (data,) if isinstance(data, str) else data
                    columns = _columns(cursor, connection, table)
                    rest = [quote(c) for c in columns if c not in (*data, marker)]
                    erase = ""
                    if erasable:  # or, in another update, the personal columns erased (counted)
                        personal, counter = erasable
                        kept = [quote(c) for c in columns if c not in (*personal, counter)]
                        erase = _PG_DROPPABLE_ERASE.format(
                            counter=quote(counter), old_rest=", ".join(f"OLD.{c}" for c in kept),
                            new_rest=", ".join(f"NEW.{c}" for c in kept))
                    function = f"csm_append_only_{table}"
                    cursor.execute(_PG_DROPPABLE_FUNCTION.format(
                        function=function, marker=quote(marker), erase=erase,
                        emptied=" AND ".join(f"octet_length(NEW.{quote(c)}) = 0" for c in data),
                        old_rest=", ".join(f"OLD.{c}" for c in rest), new_rest=", ".join(f"NEW.{c}" for c in rest)))
                    args = ""
                elif erasable:
                    personal, counter = erasable
                    cursor.execute(_PG_ERASABLE_FUNCTION)
                    function = "csm_append_only_erasable"
                    args = ", ".join([f"'{counter}'"] + [f"'once:{c}'" for c in settable_once]
                                     + [f"'wipe:{c}'" for c in personal])
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
                    data = (data,) if isinstance(data, str) else data
                    same = [f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in _columns(cursor, connection, table)
                            if c not in (*data, marker)]
                    emptied = " AND ".join(f"length(NEW.{quote(c)}) = 0" for c in data)
                    condition = (f"NOT ({' AND '.join(same)} AND OLD.{quote(marker)} IS NULL "
                                 f"AND NEW.{quote(marker)} IS NOT NULL AND {emptied})")
                if droppable and erasable:
                    personal, counter = erasable
                    kept = [f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in _columns(cursor, connection, table)
                            if c not in (*personal, counter)]
                    erased = f"NEW.{quote(counter)} = OLD.{quote(counter)} + 1"
                    condition = f"{condition[:-1]} OR ({' AND '.join(kept)} AND {erased}))"
                elif erasable:
                    personal, counter = erasable
                    fixed = set(settable_once) | set(personal) | {counter}
                    same = [f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in _columns(cursor, connection, table)
                            if c not in fixed]
                    once = [f"(OLD.{quote(c)} IS NULL OR OLD.{quote(c)} IS NEW.{quote(c)})" for c in settable_once]
                    kept = " AND ".join([f"OLD.{quote(c)} IS NEW.{quote(c)}" for c in (*personal, counter)])
                    erased = f"NEW.{quote(counter)} = OLD.{quote(counter)} + 1"
                    allowed = f"(({kept}) OR {erased})" if settable_once else erased
                    condition = f"NOT ({' AND '.join(same + once)} AND {allowed})"
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
                droppable: tuple | None = None,
                erasable: tuple[tuple[str, ...], str] | None = None) -> migrations.RunPython:
    """Migration operation: make ``table`` append-only (see module docstring)."""
    forwards, backwards = _install(table, settable_once, droppable, erasable)
    return migrations.RunPython(forwards, backwards, elidable=False)


def is_append_only_violation(error: Exception) -> bool:
    return "csm: append-only" in str(error)
