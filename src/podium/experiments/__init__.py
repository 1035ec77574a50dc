"""Generated data and the data-pruning experiment."""
