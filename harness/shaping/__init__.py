"""Checks on real link shaping (``tc``): what a shaped link actually carries."""
