"""Optional packages: each area that alone needs one imports it through `require`, so an install without
that area's extra still trains, and the area names the extra to install instead of a bare ImportError."""

from __future__ import annotations

import importlib
import types

from podium.errors import PodiumError

# top-level module -> the pyproject extra that installs it
EXTRA_OF = {"kaggle": "kaggle", "kagglesdk": "kaggle", "optuna": "search", "albumentations": "augment"}
NEEDED_FOR = {"kaggle": "Talking to Kaggle (download, submit, kernels)", "search": "The hyper-parameter search",
              "augment": "A cpu_augment recipe (albumentations)"}


def require(module: str) -> types.ModuleType:
    """`module` imported, or a PodiumError naming `pip install 'podium[<extra>]'` when its package is absent."""
    top = module.partition(".")[0]
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        if (err.name or "").partition(".")[0] != top:
            raise  # something the package itself imports is missing: its own message says what
        extra = EXTRA_OF[top]
        raise PodiumError(f"{NEEDED_FOR[extra]} needs the optional package '{top}', which is not installed.",
                          expected=f"'{top}' installed (podium's '{extra}' extra)",
                          received=f"No module named '{err.name}'",
                          fix=f"pip install 'podium[{extra}]' (in a checkout: pip install -c requirements.lock -e "
                              f"'.[{extra}]'; make install installs every extra)") from err
