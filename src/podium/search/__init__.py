"""The hyperparameter search and its results table."""
