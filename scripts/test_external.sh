#!/usr/bin/env bash
# The test suite against a plain PostgreSQL server through GALDB_DATABASE_URL (as a site runs
# galdb on its own server): password authentication, a database owned by a login role that is
# not a superuser, pgvector created by the bootstrap superuser. Tests that need the embedded
# server itself (marked `embedded`) are skipped. Extra arguments go to pytest.
. "$(dirname "$0")/env.sh"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/galdb-external-XXXXXX")"
trap 'python scripts/external_server.py stop "$DIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT
GALDB_TEST_DATABASE_URL="$(python scripts/external_server.py start "$DIR")"
export GALDB_TEST_DATABASE_URL
echo "external server: ${GALDB_TEST_DATABASE_URL%%:*}://…@${GALDB_TEST_DATABASE_URL##*@}"
python -m pytest -m "not embedded" "$@"
