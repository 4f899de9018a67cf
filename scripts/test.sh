#!/usr/bin/env bash
# The whole test suite against a real embedded PostgreSQL (started by the tests themselves).
# Extra arguments go to pytest (e.g. -k cone).
. "$(dirname "$0")/env.sh"
python -m pytest "$@"
