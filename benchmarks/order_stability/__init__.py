"""How close ``fractal_order`` stays to the stability floor, for every T."""
