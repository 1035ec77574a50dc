"""Submission files: written and validated before a byte reaches Kaggle, and traced back to their run."""
