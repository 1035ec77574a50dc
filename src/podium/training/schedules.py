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
    if cfg.schedule == "onecycle":
        return _one_cycle(cfg, steps_per_epoch)
    total = cfg.epochs * steps_per_epoch
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    alpha = min(1.0, cfg.min_lr / cfg.lr) if cfg.lr > 0 else 0.0
    if warmup:
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0, decay_steps=max(1, total - warmup), alpha=alpha,
            warmup_target=cfg.lr, warmup_steps=warmup)
    return keras.optimizers.schedules.CosineDecay(initial_learning_rate=cfg.lr, decay_steps=max(1, total),
                                                  alpha=alpha)


ONE_CYCLE_START_DIV = 25.0  # one-cycle starts at lr / 25 (Smith; fastai's div)
ONE_CYCLE_RISE = 0.3  # share of training spent rising when warmup_epochs is 0


def _one_cycle(cfg, steps_per_epoch: int):
    """Smith's one-cycle: rise linearly from lr/25 to lr over warmup_epochs (30% of training when 0),
    then anneal by cosine to min_lr. Built from keras' CosineDecay, so a checkpoint loads without a
    custom class. (Momentum is not cycled.)"""
    total = max(2, cfg.epochs * steps_per_epoch)
    rise = round(cfg.warmup_epochs * steps_per_epoch) if cfg.warmup_epochs else round(ONE_CYCLE_RISE * total)
    rise = min(max(1, int(rise)), total - 1)
    alpha = min(1.0, cfg.min_lr / cfg.lr) if cfg.lr > 0 else 0.0
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.lr / ONE_CYCLE_START_DIV, decay_steps=total - rise, alpha=alpha,
        warmup_target=cfg.lr, warmup_steps=rise)


def make_optimizer(cfg, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    lr = learning_rate(cfg, steps_per_epoch)
    ema = dict(use_ema=True, ema_momentum=cfg.ema) if cfg.ema else {}  # swapped in by train.make_callbacks
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=cfg.momentum, nesterov=True,
                                    weight_decay=cfg.weight_decay or None, **ema)
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=cfg.weight_decay or 0.004, **ema)
    return keras.optimizers.Adam(lr, weight_decay=cfg.weight_decay or None, **ema)
