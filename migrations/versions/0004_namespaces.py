"""Namespaces: task views in galdb_tasks, prediction tables galdb_predictions.v<version_id>.

galdb keeps only its own objects; a task's name can no longer take one galdb needs (such as
the next model's ``embeddings_m<id>``), and prediction tables are named from version ids
alone, so every name fits PostgreSQL's 63 bytes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from galdb.db.migrate import run_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMAS = """
CREATE SCHEMA galdb_tasks;        -- one view per task, named as the task; nothing else
CREATE SCHEMA galdb_predictions;  -- one table per head version: v<version_id>
GRANT USAGE ON SCHEMA galdb_tasks, galdb_predictions TO galdb_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb_tasks GRANT SELECT ON TABLES TO galdb_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb_predictions GRANT SELECT ON TABLES TO galdb_reader;
"""

# 0003 kept version v of task t in galdb.predictions_<t>_v<v> (key <that>_pkey, names
# PostgreSQL may have cut at 63 bytes) and the task's view in galdb.<t>. Views refer to
# tables by oid, so moving and renaming a table keeps the view on it working.
MOVE = r"""
DO $$
DECLARE
    r record;
    old regclass;
    pkey text;
BEGIN
    FOR r IN SELECT v.version_id, v.predictions_table FROM galdb.head_versions v
             WHERE v.predictions_table IS NOT NULL ORDER BY v.version_id LOOP
        old := to_regclass(format('galdb.%I', r.predictions_table));
        IF old IS NULL THEN
            UPDATE galdb.head_versions SET predictions_table = NULL, status = 'trained',
                   n_predictions = NULL WHERE version_id = r.version_id;
            UPDATE galdb.tasks SET current_version = NULL WHERE current_version = r.version_id;
            CONTINUE;
        END IF;
        SELECT conname INTO pkey FROM pg_constraint WHERE conrelid = old AND contype = 'p';
        EXECUTE format('ALTER TABLE %s SET SCHEMA galdb_predictions', old);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', old, 'v' || r.version_id);
        IF pkey IS NOT NULL THEN
            EXECUTE format('ALTER INDEX galdb_predictions.%I RENAME TO %I', pkey,
                           'v' || r.version_id || '_pkey');
        END IF;
        UPDATE galdb.head_versions SET predictions_table = 'galdb_predictions.v' || r.version_id
               WHERE version_id = r.version_id;
    END LOOP;
    -- the task views: a view in galdb named as a task (only 0003's materialize made those)
    FOR r IN SELECT c.oid::regclass AS task_view, t.name FROM galdb.tasks t
             JOIN pg_class c ON c.relname = t.name AND c.relkind = 'v'
             JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'galdb' LOOP
        EXECUTE format('ALTER VIEW %s SET SCHEMA galdb_tasks', r.task_view);
    END LOOP;
    -- builds that never finished (their versions cannot be 'materializing' any more)
    FOR r IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'galdb' AND c.relkind = 'r'
               AND c.relname LIKE 'predictions\_%\_build' LOOP
        EXECUTE format('DROP TABLE galdb.%I', r.relname);
    END LOOP;
    UPDATE galdb.head_versions SET status = CASE WHEN predictions_table IS NULL
           THEN 'failed' ELSE 'ready' END WHERE status = 'materializing';
    EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, galdb, galdb_tasks',
                   current_database());
END $$;
GRANT SELECT ON ALL TABLES IN SCHEMA galdb_tasks, galdb_predictions TO galdb_reader;
"""

# Back to 0003's names where they fit its scheme (the table and its key within 63 bytes,
# the view's name free in galdb); a table or view that cannot go back is dropped and its
# version is left to be predicted again, as 0003's own downgrade drops them all.
RESTORE = r"""
DO $$
DECLARE
    r record;
    old text;
BEGIN
    FOR r IN SELECT c.relname AS name FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'galdb_tasks' AND c.relkind = 'v' LOOP
        IF to_regclass(format('galdb.%I', r.name)) IS NULL THEN
            EXECUTE format('ALTER VIEW galdb_tasks.%I SET SCHEMA galdb', r.name);
        ELSE
            EXECUTE format('DROP VIEW galdb_tasks.%I', r.name);
            UPDATE galdb.tasks SET current_version = NULL WHERE name = r.name;
        END IF;
    END LOOP;
    FOR r IN SELECT v.version_id, t.name AS task FROM galdb.head_versions v
             JOIN galdb.tasks t USING (task_id)
             WHERE v.predictions_table = 'galdb_predictions.v' || v.version_id LOOP
        old := 'predictions_' || r.task || '_v' || r.version_id;
        IF to_regclass(format('galdb_predictions.%I', 'v' || r.version_id)) IS NULL THEN
            NULL;  -- dropped by hand: nothing to move
        ELSIF octet_length(old || '_build_pkey') <= 63
              AND to_regclass(format('galdb.%I', old)) IS NULL THEN
            EXECUTE format('ALTER TABLE galdb_predictions.%I SET SCHEMA galdb',
                           'v' || r.version_id);
            EXECUTE format('ALTER TABLE galdb.%I RENAME TO %I', 'v' || r.version_id, old);
            EXECUTE format('ALTER INDEX galdb.%I RENAME TO %I', 'v' || r.version_id || '_pkey',
                           old || '_pkey');
            UPDATE galdb.head_versions SET predictions_table = old
                   WHERE version_id = r.version_id;
            CONTINUE;
        ELSE
            EXECUTE format('DROP TABLE galdb_predictions.%I CASCADE', 'v' || r.version_id);
        END IF;
        UPDATE galdb.head_versions SET predictions_table = NULL, status = 'trained',
               n_predictions = NULL WHERE version_id = r.version_id;
        UPDATE galdb.tasks SET current_version = NULL WHERE current_version = r.version_id;
    END LOOP;
    -- a task whose view went with a dropped table has no current version any more
    UPDATE galdb.tasks t SET current_version = NULL WHERE current_version IS NOT NULL
           AND to_regclass(format('galdb.%I', t.name)) IS NULL;
    EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, galdb',
                   current_database());
END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb_tasks REVOKE SELECT ON TABLES FROM galdb_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA galdb_predictions REVOKE SELECT ON TABLES FROM galdb_reader;
DROP SCHEMA galdb_tasks CASCADE;
DROP SCHEMA galdb_predictions CASCADE;
"""


# Any role may signal the backends of its own role, so one `galdb sql` user (galdb_reader)
# could cancel or terminate another's session. Signalling backends is the owner's job:
# revoke it from PUBLIC in this database (only a superuser may; elsewhere say so).
SIGNALS = """
DO $$ BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        REVOKE EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
            pg_catalog.pg_cancel_backend(integer) FROM PUBLIC;
    ELSE
        RAISE NOTICE 'not a superuser: galdb_reader sessions may still signal each other';
    END IF;
END $$;
"""
SIGNALS_BACK = """
DO $$ BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint),
            pg_catalog.pg_cancel_backend(integer) TO PUBLIC;
    END IF;
END $$;
"""


def upgrade() -> None:
    run_sql(SCHEMAS)
    run_sql(MOVE)
    run_sql(SIGNALS)


def downgrade() -> None:
    run_sql(SIGNALS_BACK)
    run_sql(RESTORE)
