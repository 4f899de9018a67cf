"""The label-precedence rule as one SQL function, used by the effective_labels view and by
galdb's own code (heads, propagation, evaluation).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UP = """
-- Per galaxy, the label that counts for a task: the first source in the task's precedence,
-- then the newest, then the highest id. p_sources (NULL: every source) narrows the candidates
-- before the choice, e.g. heads train on human and catalog labels only.
CREATE FUNCTION galdb.effective_labels_of(p_task_id integer, p_sources text[] DEFAULT NULL)
RETURNS TABLE (galaxy_id bigint, class text, value double precision, source text,
               author text, confidence real, created_at timestamptz, label_id bigint)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ON (l.galaxy_id) l.galaxy_id, l.class, l.value, l.source, l.author,
           l.confidence, l.created_at, l.label_id
    FROM galdb.labels l JOIN galdb.tasks t USING (task_id)
    WHERE l.task_id = p_task_id AND (p_sources IS NULL OR l.source = ANY (p_sources))
    ORDER BY l.galaxy_id, array_position(t.source_precedence, l.source),
             l.created_at DESC, l.label_id DESC
$$;
COMMENT ON FUNCTION galdb.effective_labels_of IS
    'The label that counts per galaxy of a task (precedence, then newest), among p_sources.';

CREATE OR REPLACE VIEW galdb.effective_labels AS
SELECT t.name AS task, t.task_id, e.galaxy_id, e.class, e.value, e.source, e.author,
       e.confidence, e.created_at, e.label_id
FROM galdb.tasks t CROSS JOIN LATERAL galdb.effective_labels_of(t.task_id) e;
"""

DOWN = """
CREATE OR REPLACE VIEW galdb.effective_labels AS
SELECT DISTINCT ON (l.task_id, l.galaxy_id)
       t.name AS task, l.task_id, l.galaxy_id, l.class, l.value, l.source, l.author,
       l.confidence, l.created_at, l.label_id
FROM galdb.labels l JOIN galdb.tasks t USING (task_id)
ORDER BY l.task_id, l.galaxy_id, array_position(t.source_precedence, l.source),
         l.created_at DESC, l.label_id DESC;
DROP FUNCTION galdb.effective_labels_of;
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
