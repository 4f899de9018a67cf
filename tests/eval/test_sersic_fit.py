"""The direct Sersic fit recovers a simulated single-Sersic galaxy's truth."""

import pytest

from galdb.eval.sersic_fit import fit_sersic
from galdb.sim import simulate_galaxy


@pytest.mark.parametrize("noise", [False, True])
def test_fit_recovers_an_elliptical(noise):
    galaxy = simulate_galaxy(7, 2, size=64, noise=noise)  # an elliptical, n = 5.25
    truth = galaxy.model
    assert truth.morph_class == "elliptical"
    fit = fit_sersic(galaxy.image[1], galaxy.psf_fwhm[1])
    assert fit.success
    assert fit.half_light_radius_arcsec == pytest.approx(truth.half_light_radius_arcsec, rel=0.1)
    assert fit.sersic_n == pytest.approx(truth.sersic_n, rel=0.15)
    assert fit.ellipticity == pytest.approx(truth.ellipticity, abs=0.03)
