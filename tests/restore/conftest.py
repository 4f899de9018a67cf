"""Small restoration pairs shared by the restoration tests (32-pixel cutouts, real GalSim)."""

from types import SimpleNamespace

import pytest

from galdb.sim.pairs import simulate_pairs

N_PAIRS, SIZE, SEED = 24, 32, 3
TINY = "timm:test_resnet"  # a real timm backbone, small enough to train in seconds


@pytest.fixture(scope="session")
def pairs(tmp_path_factory):
    """A pairs folder (``dir``) and how it was made (``n``, ``seed``, ``size``), plus the
    backbone spec the tests train (``spec``)."""
    out = tmp_path_factory.mktemp("pairs")
    simulate_pairs(out, N_PAIRS, SEED, size=SIZE)
    return SimpleNamespace(dir=out, n=N_PAIRS, seed=SEED, size=SIZE, spec=TINY)
