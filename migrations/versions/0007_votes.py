"""Vote tasks: labels that are volunteer vote counts per answer, and a reviewer's vote weight.

A vote label is ``labels.counts``, a ``real[]`` in the order of the task's answers
(``tasks.classes``): an array because every vote label of a task has the same answers in the
same order (a fixed-shape vector a head reads as is, checked in one CHECK, summed element by
element in SQL), ``real`` because counts made from published fractions times a total, or a
reviewer's vote of weight 0.5, are not integers. For a vote task the label that counts is the
sum of the votes of every candidate label (volunteers' counts plus each reviewer's weighted
vote), not one label chosen by precedence.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from galdb.db.migrate import run_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UP = """
ALTER TABLE galdb.tasks DROP CONSTRAINT tasks_kind_check,
    ADD CONSTRAINT tasks_kind_check
        CHECK (kind IN ('classification', 'regression', 'votes'));
ALTER TABLE galdb.tasks DROP CONSTRAINT tasks_check, DROP CONSTRAINT tasks_check1,
    ADD CONSTRAINT tasks_check
        CHECK ((kind IN ('classification', 'votes')) = (classes IS NOT NULL)),
    ADD CONSTRAINT tasks_check1 CHECK (kind = 'regression' OR cardinality(classes) >= 2);
-- votes one review decision adds to its answer (vote tasks)
ALTER TABLE galdb.tasks ADD COLUMN vote_weight real NOT NULL DEFAULT 1
    CHECK (vote_weight > 0 AND vote_weight < 'Infinity');

-- votes per answer (in the task's answer order): finite, >= 0, not all zero
ALTER TABLE galdb.labels ADD COLUMN counts real[];
ALTER TABLE galdb.labels DROP CONSTRAINT labels_check,
    ADD CONSTRAINT labels_check CHECK (num_nonnulls(class, value, counts) = 1),
    ADD CONSTRAINT labels_counts_check CHECK (counts IS NULL OR (
        array_ndims(counts) = 1 AND cardinality(counts) >= 2
        AND 0 <= ALL (counts) AND 'Infinity' > ALL (counts) AND 0 < ANY (counts)));
ALTER TABLE galdb.head_labels ADD COLUMN counts real[];

DROP VIEW galdb.effective_labels;
DROP FUNCTION galdb.effective_labels_of;
-- Per galaxy, the label that counts for a task: the first source in the task's precedence,
-- then the newest, then the highest id. p_sources (NULL: every source) narrows the candidates
-- before the choice. For a vote task, counts is the element-wise sum of every candidate's
-- counts (the other columns are the chosen label's).
CREATE FUNCTION galdb.effective_labels_of(p_task_id integer, p_sources text[] DEFAULT NULL)
RETURNS TABLE (galaxy_id bigint, class text, value double precision, source text,
               author text, confidence real, created_at timestamptz, label_id bigint,
               counts real[])
LANGUAGE sql STABLE AS $$
    WITH chosen AS (
        SELECT DISTINCT ON (l.galaxy_id) l.galaxy_id, l.class, l.value, l.source, l.author,
               l.confidence, l.created_at, l.label_id, l.counts
        FROM galdb.labels l JOIN galdb.tasks t USING (task_id)
        WHERE l.task_id = p_task_id AND (p_sources IS NULL OR l.source = ANY (p_sources))
        ORDER BY l.galaxy_id, array_position(t.source_precedence, l.source),
                 l.created_at DESC, l.label_id DESC
    ), summed AS (
        SELECT s.galaxy_id, array_agg(s.total ORDER BY s.answer) AS counts
        FROM (SELECT l.galaxy_id, u.answer, sum(u.n)::real AS total
              FROM galdb.labels l CROSS JOIN LATERAL unnest(l.counts) WITH ORDINALITY u(n, answer)
              WHERE l.task_id = p_task_id AND l.counts IS NOT NULL
                AND (p_sources IS NULL OR l.source = ANY (p_sources))
                AND EXISTS (SELECT 1 FROM galdb.tasks t
                            WHERE t.task_id = p_task_id AND t.kind = 'votes')
              GROUP BY l.galaxy_id, u.answer) s
        GROUP BY s.galaxy_id
    )
    SELECT c.galaxy_id, c.class, c.value, c.source, c.author, c.confidence, c.created_at,
           c.label_id, coalesce(v.counts, c.counts)
    FROM chosen c LEFT JOIN summed v USING (galaxy_id)
$$;
COMMENT ON FUNCTION galdb.effective_labels_of IS
    'The label that counts per galaxy of a task (precedence, then newest; summed votes for a '
    'vote task), among p_sources.';

CREATE VIEW galdb.effective_labels AS
SELECT t.name AS task, t.task_id, e.galaxy_id, e.class, e.value, e.source, e.author,
       e.confidence, e.created_at, e.label_id, e.counts
FROM galdb.tasks t CROSS JOIN LATERAL galdb.effective_labels_of(t.task_id) e;
GRANT SELECT ON galdb.effective_labels TO galdb_reader;
"""

DOWN = """
DROP VIEW galdb.effective_labels;
DROP FUNCTION galdb.effective_labels_of;
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
CREATE VIEW galdb.effective_labels AS
SELECT t.name AS task, t.task_id, e.galaxy_id, e.class, e.value, e.source, e.author,
       e.confidence, e.created_at, e.label_id
FROM galdb.tasks t CROSS JOIN LATERAL galdb.effective_labels_of(t.task_id) e;
GRANT SELECT ON galdb.effective_labels TO galdb_reader;

-- vote tasks and their labels cannot be kept without the columns
DELETE FROM galdb.tasks WHERE kind = 'votes';
ALTER TABLE galdb.head_labels DROP COLUMN counts;
ALTER TABLE galdb.labels DROP CONSTRAINT labels_counts_check, DROP CONSTRAINT labels_check,
    DROP COLUMN counts;
ALTER TABLE galdb.labels ADD CONSTRAINT labels_check CHECK ((class IS NULL) <> (value IS NULL));
ALTER TABLE galdb.tasks DROP COLUMN vote_weight;
ALTER TABLE galdb.tasks DROP CONSTRAINT tasks_check, DROP CONSTRAINT tasks_check1,
    ADD CONSTRAINT tasks_check CHECK ((kind = 'classification') = (classes IS NOT NULL)),
    ADD CONSTRAINT tasks_check1 CHECK (kind = 'regression' OR cardinality(classes) >= 2);
ALTER TABLE galdb.tasks DROP CONSTRAINT tasks_kind_check,
    ADD CONSTRAINT tasks_kind_check CHECK (kind IN ('classification', 'regression'));
"""


def upgrade() -> None:
    run_sql(UP)


def downgrade() -> None:
    run_sql(DOWN)
