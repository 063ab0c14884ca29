"""A sentence VAE on the FNet encoder whose latent lives on the unit sphere (`fnet vae`).

* :mod:`fnet.vae.vmf`: the von Mises-Fisher distribution (log-Bessel, mean resultant length, KL to the
  uniform prior, Wood's sampler with the Householder reparameterisation);
* :mod:`fnet.vae.model`: :class:`~fnet.vae.model.FNetVAE` (FNet encoder -> vMF or Gaussian latent -> FNet MLM
  decoder conditioned on z, decoded by mask-predict) and its objective;
* :mod:`fnet.vae.run`: ``train``, ``encode``, ``sample``, ``interpolate`` with their typed configs.
"""

POSTERIORS = ("vmf", "gaussian")  # the latent's distribution (here, torch-free: `fnet --help` reads it)
