"""The owner role: galdb's schemas and every object in them belong to ``galdb_owner``.

``galdb_owner`` is a group role (NOLOGIN). Whoever ingests, embeds, trains and runs jobs logs
in as any role that is a member of it; galdb's owner connections ``SET ROLE galdb_owner``, so
objects made at run time (prediction tables, task views, kNN graphs) belong to it too and
another member can replace or drop them. The role that runs this migration becomes a member.

Later revisions: objects a revision creates belong to the role that runs it; end such a
revision by giving them to ``galdb_owner`` (``tests/db/test_roles.py`` checks that every
object of galdb's schemas is the owner role's).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMAS = "ARRAY['galdb', 'galdb_tasks', 'galdb_predictions']"

UP = f"""
DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'galdb_owner') THEN
        CREATE ROLE galdb_owner NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT;
    END IF;
    -- SET: to give objects to it and act as it; INHERIT: its rights without SET ROLE. (From
    -- PostgreSQL 16 a role made by a CREATEROLE user gives its maker ADMIN OPTION only.)
    IF NOT (pg_has_role(current_user, 'galdb_owner', 'SET')
            AND pg_has_role(current_user, 'galdb_owner', 'USAGE')) THEN
        IF current_setting('server_version_num')::int >= 160000 THEN
            EXECUTE format('GRANT galdb_owner TO %I WITH INHERIT TRUE, SET TRUE', current_user);
        ELSE
            EXECUTE format('GRANT galdb_owner TO %I', current_user);
        END IF;
    END IF;
END $$;
-- a schema's owner must be allowed to create schemas in the database
DO $$ BEGIN
    EXECUTE format('GRANT CREATE ON DATABASE %I TO galdb_owner', current_database());
END $$;
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT nspname FROM pg_namespace WHERE nspname = ANY({SCHEMAS}) LOOP
        EXECUTE format('ALTER SCHEMA %I OWNER TO galdb_owner', r.nspname);
    END LOOP;
    -- tables (partitions included), views and sequences no column owns (those follow their
    -- table); indexes follow their table
    FOR r IN SELECT c.oid::regclass AS rel, c.relkind FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = ANY({SCHEMAS}) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                               AND d.objid = c.oid AND (d.deptype = 'e' OR c.relkind = 'S'
                                                        AND d.deptype IN ('a', 'i')))
             ORDER BY c.oid LOOP
        EXECUTE format('ALTER %s %s OWNER TO galdb_owner',
                       CASE r.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                                      WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                                      ELSE 'TABLE' END, r.rel);
    END LOOP;
    FOR r IN SELECT p.oid::regprocedure AS fn, p.prokind FROM pg_proc p
             JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = ANY({SCHEMAS})
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                               AND d.objid = p.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER ROUTINE %s OWNER TO galdb_owner', r.fn);
    END LOOP;
    FOR r IN SELECT t.oid::regtype AS typ FROM pg_type t
             JOIN pg_namespace n ON n.oid = t.typnamespace
             WHERE n.nspname = ANY({SCHEMAS}) AND t.typtype IN ('e', 'd', 'r')
               AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                               AND d.objid = t.oid AND d.deptype = 'e') LOOP
        EXECUTE format('ALTER TYPE %s OWNER TO galdb_owner', r.typ);
    END LOOP;
END $$;
-- Any member reads the schema revision (galdb checks it on connecting) and may migrate.
GRANT SELECT, INSERT, UPDATE, DELETE ON public.alembic_version TO galdb_owner;
-- What galdb_owner makes at run time is readable as what the migrations made is.
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb
    GRANT SELECT ON TABLES TO galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_tasks
    GRANT SELECT ON TABLES TO galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_predictions
    GRANT SELECT ON TABLES TO galdb_reader, galdb_reviewer;
"""

# Back to the migrating role; the group role stays (roles belong to the server, and another
# database may use it).
DOWN = """
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb
    REVOKE SELECT ON TABLES FROM galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_tasks
    REVOKE SELECT ON TABLES FROM galdb_reader, galdb_reviewer;
ALTER DEFAULT PRIVILEGES FOR ROLE galdb_owner IN SCHEMA galdb_predictions
    REVOKE SELECT ON TABLES FROM galdb_reader, galdb_reviewer;
REASSIGN OWNED BY galdb_owner TO CURRENT_USER;
REVOKE ALL ON public.alembic_version FROM galdb_owner;
DO $$ BEGIN
    EXECUTE format('REVOKE CREATE ON DATABASE %I FROM galdb_owner', current_database());
END $$;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
