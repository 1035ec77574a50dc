"""The pieces a run is made of, below the task objects: augmentation, TTA views, schedules, class balancing,
segmentation losses, checkpoints and the epoch monitor, validation, the runtime. The runners that use the
task objects are in podium.runners."""
