"""The task registry: the config's `task` string -> the object that owns everything a task does
differently (podium.tasks.base.Task). A new task is one module here plus its line in TASKS and its keys in
podium/task_keys.py (docs/tasks.md); importing this package imports no keras.

The module-level functions are the older spelling, kept for callers that pass a task name.
"""

from __future__ import annotations

from podium.task_keys import task_keys
from podium.tasks.base import OOF_OUTPUTS, FoldScores, Task
from podium.tasks.classification import Classification
from podium.tasks.localization import Localization
from podium.tasks.multilabel import Multilabel
from podium.tasks.regression import Regression
from podium.tasks.segmentation import Segmentation

TASKS: dict[str, Task] = {task.name: task for task in (Classification(), Segmentation(), Localization(),
                                                       Multilabel(), Regression())}
# the logged metric that tracks the fold score (what a search's pruner watches per epoch)
SCORE_LOGGED = {name: task.score_logged for name, task in TASKS.items()}

__all__ = ["OOF_OUTPUTS", "SCORE_LOGGED", "TASKS", "FoldScores", "Task", "get_task"]


def get_task(name: str) -> Task:
    task_keys(name)  # an unknown name: the error listing the known ones
    return TASKS[name]


def build_model(cfg, num_classes: int):
    return get_task(cfg.task).build_model(cfg, num_classes)


def compile_arguments(cfg, num_classes: int) -> dict:
    return get_task(cfg.task).compile_arguments(cfg, num_classes)


def view_inverter(task: str):
    return get_task(task).view_inverter()
