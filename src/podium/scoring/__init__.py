"""Scores on numpy arrays, for validation, reports and blends."""
