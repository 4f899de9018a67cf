"""The registry of job kinds: a kind is a name and a function ``run(conn, job) -> result``.

Adding a kind is one module with a ``run`` function and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from galdb.jobs import retrain

KINDS: dict[str, Callable] = {"retrain": retrain.run}
