"""Data stages: extraction, decoding, the index table, folds, the uint8 cache and the input pipeline."""
