"""Learning rate over training, and the optimizer that follows it.

Schedules are expressed in epochs in the config (what a user reasons in) and converted to steps here,
once, so nothing else needs to know steps_per_epoch.
"""

from __future__ import annotations

import keras


def learning_rate(cfg, steps_per_epoch: int):
    """A float for constant/plateau (ReduceLROnPlateau needs a float), a schedule object otherwise."""
    if cfg.schedule in ("constant", "plateau"):
        return cfg.lr
    if cfg.schedule == "piecewise":
        boundaries = [max(1, int(round(epoch * steps_per_epoch))) for epoch in cfg.lr_boundaries]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, list(cfg.lr_values))
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    alpha = min(1.0, cfg.min_lr / cfg.lr) if cfg.lr > 0 else 0.0
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=max(1, total - warmup), alpha=alpha,
            warmup_target=cfg.lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(initial_learning_rate=cfg.lr, decay_steps=max(1, total),
                                                  alpha=alpha)


def make_optimizer(cfg, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True,
                                    weight_decay=cfg.weight_decay or None)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay or 0.004)
    return keras.optimizers.Adam(lr, weight_decay=cfg.weight_decay or None)


def lr_at(optimizer: keras.optimizers.Optimizer) -> float:
    """The rate actually in force now, schedule or not (for logs and plots)."""
    rate = optimizer.learning_rate
    return float(keras.ops.convert_to_numpy(rate))
