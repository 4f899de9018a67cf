"""Synthetic data factories shared by tests, docs and benchmarks (no network, deterministic).

* :mod:`galdb.datasets.sky` — random sky positions and catalogs of any size;
* :mod:`galdb.datasets.hdf5` — HDF5 files in the ssl-legacysurvey and Galaxy10 layouts;
* :mod:`galdb.datasets.bad_inputs` — a corpus of broken inputs, each with the quarantine
  code galdb must give it.

Mock releases with real morphology and truth come from :mod:`galdb.sim` (GalSim).
"""
