"""PEPit worst-case certificates of the fractal, silver and constant steps."""
