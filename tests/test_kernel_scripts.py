"""The kernel is a real Python file (podium/kaggle/scripts/kernel.py) running a job module of that folder:
each imports and compiles as it is, names nothing undefined, imports nothing unused, and rendering fills
only the kernel's settings block, with the settings its job reads. The rendered training kernel runs the
whole job on the demo as Kaggle would run it."""

from __future__ import annotations

import ast
import builtins
import importlib
import json
import os
import shutil
import subprocess
import sys
import symtable
from pathlib import Path

import pandas as pd
import pytest

from podium.config import load_config
from podium.kaggle.kernels import (KERNEL_SCRIPT, SCRIPT_NAME, SCRIPTS, inference_script, kernel_script,
                                   load_kernel_spec, render_kernel, split_settings_block)
from podium.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]
SCRIPT_FILES = sorted(path.name for path in SCRIPTS.glob("*.py") if path.name != "__init__.py")
JOBS = ("training_kernel", "inference_kernel")


def _problems(text: str, name: str) -> list[str]:
    """A small lint: names used but defined nowhere (a typo runs only on Kaggle), and unused imports."""
    table = symtable.symtable(text, name, "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    problems = []

    def walk(scope) -> None:
        for symbol in scope.get_symbols():
            if symbol.is_global() and symbol.is_referenced() and symbol.get_name() not in defined \
                    and not hasattr(builtins, symbol.get_name()):
                problems.append(f"{scope.get_name()}: {symbol.get_name()} is not defined")
        for child in scope.get_children():
            walk(child)

    walk(table)
    tree = ast.parse(text)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}  # annotations included
    imported = [alias.asname or alias.name.split(".")[0] for node in tree.body
                if isinstance(node, (ast.Import, ast.ImportFrom)) and getattr(node, "module", "") != "__future__"
                for alias in node.names]
    return problems + [f"{name} is imported and unused" for name in imported if name not in used]


@pytest.fixture
def cfg(tmp_path):
    return load_config(ROOT / "configs" / "demo.yaml", {"runs_dir": str(tmp_path / "runs"), "folds": [0]})


@pytest.mark.parametrize("script", SCRIPT_FILES)
def test_scripts_import_compile_and_lint_clean(script):
    module = importlib.import_module(f"podium.kaggle.scripts.{Path(script).stem}")  # nothing runs on import
    assert Path(module.__file__) == SCRIPTS / script
    text = (SCRIPTS / script).read_text(encoding="utf-8")
    compile(text, script, "exec")
    assert _problems(text, script) == []
    assert "{{" not in text and ".format(" not in text  # no template left in code
    if script == KERNEL_SCRIPT:  # the settings block's defaults
        assert module.RUN_TOKEN == "" and module.PODIUM_SOURCE == "" and module.SETTINGS == {"job": ""}
    assert "inference_kernel.py" in SCRIPT_FILES and "training_kernel.py" in SCRIPT_FILES


@pytest.mark.parametrize("job", JOBS)
def test_rendering_changes_only_the_settings_block(cfg, job):
    rendered = kernel_script(cfg, "0123abcd", "/kaggle/input/w/b0.h5") if job == "training_kernel" \
        else inference_script(cfg, "0123abcd")
    head, block, tail = split_settings_block(rendered)
    o_head, o_block, o_tail = split_settings_block((SCRIPTS / KERNEL_SCRIPT).read_text(encoding="utf-8"))
    assert (head, tail) == (o_head, o_tail) and block != o_block
    compile(rendered, SCRIPT_NAME, "exec")
    assert _problems(rendered, SCRIPT_NAME) == []
    namespace: dict = {}
    exec(compile("import json\n" + block, SCRIPT_NAME, "exec"), namespace)  # the block alone: its values
    assert namespace["RUN_TOKEN"] == "0123abcd" and len(namespace["PODIUM_SOURCE"]) > 10_000
    settings = namespace["SETTINGS"]
    reads = importlib.import_module(f"podium.kaggle.scripts.{job}").READS
    assert settings.pop("job") == job and set(settings) == set(reads)  # what the job reads is what is filled
    assert settings["competition"] == "demo"
    if job == "training_kernel":
        assert settings["config"] == json.loads(json.dumps(cfg.to_dict()))
        assert settings["weights_file"] == "/kaggle/input/w/b0.h5"
    else:
        assert settings["run_id"] == cfg.run_id and "tta" in settings["inference"]


@pytest.mark.slow
def test_rendered_training_kernel_runs_the_whole_job_as_on_kaggle(tmp_path):
    """podium from the script's own copy, the competition from the input folder, one epoch of one fold:
    submission.csv, the run record with the token, and a run folder an inference kernel can read."""
    cfg = load_config(ROOT / "configs" / "demo.yaml", {"folds": [0], "epochs": 1})
    spec = load_kernel_spec(overrides={"owner": "tester", "accelerator": "none"})
    rendered = render_kernel(cfg, get_task(cfg.task), spec, owner="x", out_root=tmp_path / "kernels")
    competition = tmp_path / "input" / "demo"
    shutil.copytree(ROOT / "src" / "podium" / "demo", competition)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PODIUM_KAGGLE_INPUT": str(tmp_path / "input"), "PODIUM_KAGGLE_WORKING": str(tmp_path / "working"),
           "PODIUM_SCRATCH": str(tmp_path / "scratch")}
    done = subprocess.run([sys.executable, "-I", str(rendered.folder / SCRIPT_NAME)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    work = tmp_path / "working"
    record = json.loads((work / "podium-run.json").read_text())
    assert record["token"] == rendered.token and record["run_id"] == cfg.run_id
    submission = pd.read_csv(work / "submission.csv", dtype=str)
    sample = pd.read_csv(competition / "sample_submission.csv", dtype=str)
    assert submission["id"].tolist() == sample["id"].tolist()
    assert (work / record["submission"]).is_file()
    run_dir = work / "runs" / cfg.run_id
    assert (run_dir / "classes.json").is_file() and (run_dir / "fold-0" / "best.keras").is_file()
    assert (tmp_path / "scratch" / "src" / "podium" / "workflow.py").is_file()
    assert "cv" in done.stdout.lower()  # the run's report, printed at the end
