"""podium: a Kaggle image competition from raw data to a validated submission."""

import os as _os

# albumentations phones home on import unless told not to; no network is the normal case here.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

__version__ = "0.1.0"
