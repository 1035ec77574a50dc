"""podium: a Kaggle image competition from raw data to a validated submission."""

import os as _os

# albumentations phones home on import unless told not to; no network is the normal case here.
_os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")


def _pick_keras_backend() -> None:
    """Keras defaults to TensorFlow and fails on import where it is absent (a JAX-only GPU or TPU image):
    there, with JAX installed and no backend named, podium picks JAX. An explicit KERAS_BACKEND wins."""
    import importlib.util
    import sys

    if "KERAS_BACKEND" in _os.environ or "keras" in sys.modules:
        return

    def installed(name: str) -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            return False

    if not installed("tensorflow") and installed("jax"):
        _os.environ["KERAS_BACKEND"] = "jax"


_pick_keras_backend()

__version__ = "0.1.0"
