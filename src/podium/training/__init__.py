"""Training and prediction: the one training entry, schedules, augmentation, TTA, checkpoints."""
