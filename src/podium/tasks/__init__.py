"""The task registry: the config's `task` string -> the object that owns everything a task does
differently (podium.tasks.base.Task). The entry points (CLI verbs, kernel scripts, benchmarks) resolve the
task once with `get_task(cfg.task)` and pass the object down; nothing below them looks it up by name.

A new task is a Task subclass and one line: `register(MyTask(), TaskKeys(...))` (docs/tasks.md "Adding a
task"). Importing this package imports no keras.
"""

from __future__ import annotations

from podium.errors import PodiumError
from podium.task_keys import TASK_NAMES, TaskKeys, add_task_keys, remove_task_keys, task_keys
from podium.tasks.base import OOF_OUTPUTS, FoldScores, Task
from podium.tasks.classification import Classification
from podium.tasks.detection import Detection
from podium.tasks.localization import Localization
from podium.tasks.multilabel import Multilabel
from podium.tasks.regression import Regression
from podium.tasks.segmentation import Segmentation

TASKS: dict[str, Task] = {task.name: task for task in (Classification(), Segmentation(), Localization(),
                                                       Multilabel(), Regression(), Detection())}

__all__ = ["OOF_OUTPUTS", "TASKS", "FoldScores", "Task", "get_task", "register", "unregister"]


def get_task(name: str) -> Task:
    """The task object of a config's or a spec's `task` (entry points only); an unknown name lists the known."""
    task_keys(name)  # an unknown name: the error listing the known ones
    return TASKS[name]


def register(task: Task, keys: TaskKeys) -> Task:
    """Add a task: its object here, what a config and a spec may set for it in podium.task_keys."""
    if not task.name or task.name in TASK_NAMES:
        raise PodiumError(f"Cannot register a task named {task.name!r}.", expected="a new, non-empty task name",
                          received=repr(task.name), fix="give the Task subclass its own `name`")
    add_task_keys(task.name, keys)
    TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a registered task (a test's own task leaves the registry as it found it)."""
    remove_task_keys(name)
    TASKS.pop(name, None)
