"""podium's Kaggle kernel: `make kernel` renders this file as kernels/<slug>/podium_kernel.py.

podium's own code travels inside it (PODIUM_SOURCE, a deterministic zip of src/podium, base64), so the
kernel needs no pip and no internet for it; the kernel unpacks it and runs one job module of this folder
from that copy: training_kernel (the whole job, as `podium run`) or inference_kernel (a code
competition's offline prediction), reading /kaggle/input and writing /kaggle/working
(podium.kaggle.scripts.runtime). Rendering fills only the block between the two `podium kernel settings`
lines (podium.kaggle.kernels.fill_script); everything else is this file as it is, imported and checked by
the tests. Standard library only: nothing but the inlined copy of podium is imported.
"""
import base64
import importlib
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path

# >>> podium kernel settings: `make kernel` fills this block, and nothing else in the file
RUN_TOKEN = ""
SETTINGS = json.loads(r"""{"job": ""}""")
PODIUM_SOURCE = ""
# <<< podium kernel settings

SCRATCH = Path(os.environ.get("PODIUM_SCRATCH", "/tmp/podium"))


def unpack_podium():
    """podium's inlined code into a fresh scratch folder, first on sys.path: the kernel runs this code."""
    target = SCRATCH / "src"
    shutil.rmtree(target, ignore_errors=True)
    with zipfile.ZipFile(io.BytesIO(base64.b64decode("".join(PODIUM_SOURCE.split())))) as archive:
        archive.extractall(target)
    sys.path.insert(0, str(target))


def main():
    unpack_podium()
    job = importlib.import_module(f"podium.kaggle.scripts.{SETTINGS['job']}")
    job.main({k: v for k, v in SETTINGS.items() if k != "job"}, RUN_TOKEN, SCRATCH)


if __name__ == "__main__":
    main()
