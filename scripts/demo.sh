#!/usr/bin/env bash
# The end-to-end demo, offline, on the embedded database:
# simulate a mock release -> ingest -> cone search -> read-only SQL -> embed (galdb:default) ->
# look-alikes -> a head from a few labels -> the morphology view -> label propagation ->
# a scripted review round that crosses the retrain threshold -> the worker publishes a new version.
# Extra arguments go to `galdb demo` (e.g. --n 500).
. "$(dirname "$0")/env.sh"
galdb demo "$@"
