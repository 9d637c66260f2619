"""Bench specs of nerfstudio's own methods that the suite declares (their code is nerfstudio's)."""
