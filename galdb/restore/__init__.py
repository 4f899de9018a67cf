"""Image restoration (denoising + deblurring) with the LVM backbone as a U-Net encoder.

Modules: ``network`` (the model and its stretch), ``pairs`` (reading simulated pairs),
``train``, ``metrics`` (PSNR, SSIM), ``baselines`` (no-op, Gaussian, Wiener), ``evaluate``,
``versions`` (``galdb.restoration_versions``) and ``run`` (restoring a release to FITS files).
"""
