"""One way to import late: a module object that imports on first use.

podium keeps keras (seconds to import) out of `podium --help`, `podium config` and `import podium.tasks`;
the modules that need keras-heavy code name it once at the top, with the reason on a `# imported on first
use:` line, as keras does for optional packages (keras/src/utils/module_utils.py LazyModule), instead of an
import statement inside each function. The architecture test reads `LazyModule("podium.x")` as an import of
podium.x, so layers and cycles still hold, and refuses podium imports inside functions.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    """`name` imported when an attribute is first read."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.module: ModuleType | None = None

    def initialize(self) -> ModuleType:
        if self.module is None:
            self.module = importlib.import_module(self.name)
        return self.module

    @property
    def loaded(self) -> bool:
        return self.module is not None

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") and attr.endswith("__"):  # copy, pickle and inspect probe dunders
            raise AttributeError(attr)
        return getattr(self.initialize(), attr)

    def __repr__(self) -> str:
        return f"LazyModule({self.name!r}, {'loaded' if self.loaded else 'not loaded'})"
