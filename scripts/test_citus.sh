#!/usr/bin/env bash
# The tests marked `citus` on a real local Citus cluster (a coordinator and two workers started
# from the embedded server's binaries, tests/citus/conftest.py). Citus is built once into
# $GALDB_CITUS_CACHE (default ~/.cache/galdb/citus-14.0.1-pg18; about 3 minutes on 2 cores
# from nothing, then reused) and copied into this virtual environment's embedded server.
# Extra arguments go to pytest.
. "$(dirname "$0")/env.sh"
python scripts/build_citus.py
python -m pytest -m citus tests/citus "$@"
