"""Tasks, labels with provenance, head versions with label snapshots, kNN graphs.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from galdb.db.migrate import run_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = """
-- A task is what a head predicts: a classification over fixed classes or a regression.
-- Its name is also the name of its predictions view (galdb.<name>), its classes the
-- suffixes of that view's probability columns (p_<class>).
CREATE TABLE galdb.tasks (
    task_id           serial PRIMARY KEY,
    name              text NOT NULL UNIQUE CHECK (name ~ '^[a-z][a-z0-9_]{0,40}$'),
    kind              text NOT NULL CHECK (kind IN ('classification', 'regression')),
    classes           text[],
    unit              text,
    description       text NOT NULL DEFAULT '',
    -- which label wins when a galaxy has several: first source in this list
    source_precedence text[] NOT NULL DEFAULT '{human,propagated,catalog}',
    current_version   integer,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'classification') = (classes IS NOT NULL)),
    CHECK (kind = 'regression' OR cardinality(classes) >= 2)
);

-- Every label a galaxy has for a task, one per (source, author): a re-import or a reviewer's
-- second answer replaces the first. Classification labels are class names, regression
-- labels values.
CREATE TABLE galdb.labels (
    label_id   bigserial PRIMARY KEY,
    task_id    integer NOT NULL REFERENCES galdb.tasks ON DELETE CASCADE,
    galaxy_id  bigint NOT NULL REFERENCES galdb.galaxies ON DELETE CASCADE,
    source     text NOT NULL CHECK (source IN ('catalog', 'human', 'propagated')),
    author     text NOT NULL,
    class      text,
    value      double precision,
    confidence real CHECK (confidence BETWEEN 0 AND 1),
    origin     text NOT NULL DEFAULT '',  -- the file, review session or propagation run
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((class IS NULL) <> (value IS NULL)),
    UNIQUE (task_id, galaxy_id, source, author)
);
CREATE INDEX labels_task_source_idx ON galdb.labels (task_id, source);

-- The label that counts for each (task, galaxy): highest-precedence source, then newest.
CREATE VIEW galdb.effective_labels AS
SELECT DISTINCT ON (l.task_id, l.galaxy_id)
       t.name AS task, l.task_id, l.galaxy_id, l.class, l.value, l.source, l.author,
       l.confidence, l.created_at, l.label_id
FROM galdb.labels l JOIN galdb.tasks t USING (task_id)
ORDER BY l.task_id, l.galaxy_id, array_position(t.source_precedence, l.source),
         l.created_at DESC, l.label_id DESC;

-- One trained head. Its predictions live in galdb.predictions_<task>_v<version_id>;
-- status: trained -> materializing -> ready (or failed). parameters is an .npz archive.
CREATE TABLE galdb.head_versions (
    version_id        serial PRIMARY KEY,
    task_id           integer NOT NULL REFERENCES galdb.tasks ON DELETE CASCADE,
    model_id          integer NOT NULL REFERENCES galdb.models,
    algorithm         text NOT NULL,
    hyperparameters   jsonb NOT NULL,
    label_sources     text[] NOT NULL,
    n_labels          integer NOT NULL,
    label_counts      jsonb NOT NULL DEFAULT '{}',
    metrics           jsonb NOT NULL,
    parameters        bytea NOT NULL,
    status            text NOT NULL DEFAULT 'trained'
                      CHECK (status IN ('trained', 'materializing', 'ready', 'failed')),
    predictions_table text,
    n_predictions     bigint,
    train_seconds     real,
    created_at        timestamptz NOT NULL DEFAULT now(),
    materialized_at   timestamptz
);
ALTER TABLE galdb.tasks ADD FOREIGN KEY (current_version) REFERENCES galdb.head_versions;

-- The exact labels a head version was trained on, as they were then.
CREATE TABLE galdb.head_labels (
    version_id integer NOT NULL REFERENCES galdb.head_versions ON DELETE CASCADE,
    galaxy_id  bigint NOT NULL,
    label_id   bigint NOT NULL,
    source     text NOT NULL,
    class      text,
    value      double precision,
    PRIMARY KEY (version_id, galaxy_id)
);

-- k nearest neighbours of every embedded galaxy of a model, kept for propagation and review.
-- A graph is rebuilt when the model's embeddings change (n_embeddings differs).
CREATE TABLE galdb.knn_graphs (
    graph_id     serial PRIMARY KEY,
    model_id     integer NOT NULL REFERENCES galdb.models,
    k            integer NOT NULL CHECK (k BETWEEN 1 AND 200),
    ef_search    integer NOT NULL,
    n_embeddings bigint NOT NULL,
    status       text NOT NULL DEFAULT 'building' CHECK (status IN ('building', 'ready')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    built_at     timestamptz
);
CREATE TABLE galdb.knn_neighbours (
    graph_id      integer NOT NULL REFERENCES galdb.knn_graphs ON DELETE CASCADE,
    galaxy_id     bigint NOT NULL,
    neighbour_ids bigint[] NOT NULL,   -- nearest first
    similarities  real[] NOT NULL,     -- cosine similarity, same order
    PRIMARY KEY (graph_id, galaxy_id)
);
"""


def upgrade() -> None:
    run_sql(TABLES)
    # `SELECT … FROM morphology` should just work: task views live in galdb.
    run_sql(
        'DO $$ BEGIN EXECUTE format(\'ALTER DATABASE %I SET search_path = "$user", public, '
        "galdb', current_database()); END $$"
    )
    run_sql("GRANT SELECT ON ALL TABLES IN SCHEMA galdb TO galdb_reader")


def downgrade() -> None:
    # predictions tables (and the task views on them) are made at run time, one per version
    run_sql(
        "DO $$ DECLARE r record; BEGIN FOR r IN SELECT tablename FROM pg_tables "
        "WHERE schemaname = 'galdb' AND tablename LIKE 'predictions\\_%' LOOP "
        "EXECUTE format('DROP TABLE galdb.%I CASCADE', r.tablename); END LOOP; "
        "EXECUTE format('ALTER DATABASE %I RESET search_path', current_database()); END $$"
    )
    run_sql(
        "DROP VIEW galdb.effective_labels; DROP TABLE galdb.knn_neighbours, galdb.knn_graphs, "
        "galdb.head_labels; ALTER TABLE galdb.tasks DROP COLUMN current_version; "
        "DROP TABLE galdb.head_versions, galdb.labels, galdb.tasks"
    )
