import shutil
import zipfile
from pathlib import Path

import pytest

from tests_support import TinyDemo

DEMO_DIR = Path(__file__).resolve().parents[1] / "src" / "podium" / "demo"


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    """The embedded demo unpacked as `make data` leaves it: data_root for spec `demo`. Treat as read-only."""
    root = tmp_path_factory.mktemp("demo")
    for archive in ("train.zip", "test.zip"):
        with zipfile.ZipFile(DEMO_DIR / archive) as zf:
            zf.extractall(root)
    shutil.copyfile(DEMO_DIR / "sample_submission.csv", root / "sample_submission.csv")
    return root


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """A data_dir where `make data COMP=demo` has run (fetched, unpacked, indexed). Treat as read-only."""
    from tests_support import make_data

    data_dir = tmp_path_factory.mktemp("data")
    make_data("demo", str(data_dir))
    return data_dir


# ------------------------------------------------------------------------------------- the tiny demo run
@pytest.fixture(scope="session")
def tiny(demo_data) -> TinyDemo:
    """The tiny demo run's settings on the prepared demo data (see TinyDemo)."""
    return TinyDemo(demo_data)


@pytest.fixture(scope="session")
def tiny_run(tiny, tmp_path_factory):
    """A finished, predicted tiny demo run, trained once per session: its config. Read-only; a test that adds
    runs beside it or damages its files works on tiny.copy(tiny_run, somewhere)."""
    from podium.tasks import get_task
    from podium.workflow import predict_run, train_run

    cfg = tiny.cfg(tmp_path_factory.mktemp("tiny"), "name=tiny")
    train_run(cfg, get_task(cfg.task), progress=False)
    predict_run(cfg, get_task(cfg.task), progress=False)
    return cfg
