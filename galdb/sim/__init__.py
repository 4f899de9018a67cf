"""GalSim simulator of a mock DESI Legacy Surveys-like release: cutouts plus truth catalog."""

from galdb.sim.simulate import (
    CATALOG_COLUMNS,
    CLASSES,
    PIXEL_SCALE,
    SimulatedGalaxy,
    simulate_galaxy,
    simulate_release,
)

__all__ = [
    "CATALOG_COLUMNS",
    "CLASSES",
    "PIXEL_SCALE",
    "SimulatedGalaxy",
    "simulate_galaxy",
    "simulate_release",
]
