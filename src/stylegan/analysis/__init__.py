"""The StyleGAN papers' analysis figures: resolution usage, PPL histograms, Jacobian spectra, droplets, spectra."""
