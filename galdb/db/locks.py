"""Advisory locks: every two-key lock galdb takes is ``(namespace, id)``, one namespace per
purpose, all listed here so that no two purposes share one.

(Two did: a review decision's retrain count waited on any running embed of the model whose id
equalled the task's, for as long as the embed ran.)
"""

INGEST_RELEASE = 7_201_405  # (., release_id): one ingest per release at a time
EMBED_MODEL = 7_201_406  # (., model_id): one embed per model at a time
RETRAIN_COUNT = 7_201_407  # (., task_id): the threshold count of review corrections
LINEAGE_MATCH = 7_201_410  # (., new release_id): one lineage match per release at a time


def namespaces() -> dict[str, int]:
    """Every namespace by name (tests check that they differ)."""
    return {k: v for k, v in globals().items() if k.isupper() and isinstance(v, int)}
