"""Training: losses and regularisers, ADA, the training loop, options and presets."""
