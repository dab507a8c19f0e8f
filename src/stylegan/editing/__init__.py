"""What people do with a trained generator: projection, style mixing, interpolation."""
