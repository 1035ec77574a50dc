"""The whole code-competition loop on the demo, as a user runs it, every verb through podium.cli.main.main and
the real kaggle client against the stand-in: train here, publish the run, render the offline inference
kernel, rehearse it (no network, renamed test ids), push it, wait for it, submit that version, and wait for
its score. The stand-in's request log of the loop is written to server.log (quoted in docs/kaggle.md)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from kaggle_standin import kaggle_home, standin  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[1]
HELD_BACK = Path(__file__).with_name("data") / "demo_test_labels.csv"


def _unshare_permitted() -> bool:
    return bool(shutil.which("unshare")) and subprocess.run(["unshare", "-n", "true"]).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _unshare_permitted(), reason="`unshare -n` is not permitted here (needs root or user "
                                                      "namespaces); the rehearsal refuses to run with network")
def test_train_publish_rehearse_push_submit_a_code_competition(standin, kaggle_home, tmp_path, monkeypatch,
                                                               capsys):
    from podium.cli.main import main

    monkeypatch.chdir(tmp_path)  # kernels/ is written under the working directory, as the Makefile does
    spec = (ROOT / "src" / "podium" / "competitions" / "demo.yaml").read_text(encoding="utf-8")
    (tmp_path / "demo-code.yaml").write_text(spec + "\nsubmission_kind: code\n", encoding="utf-8")
    standin.add_competition("demo", {})
    config = tmp_path / "codedemo.yaml"
    config.write_text(f"name: codedemo\ncompetition: {tmp_path / 'demo-code.yaml'}\nbackbone: tiny_cnn\n"
                      f"image_size: 32\nepochs: 2\nfolds: [0]\ntta: [identity, hflip]\nverbose: 0\n"
                      f"data_dir: {tmp_path / 'data'}\nruns_dir: {tmp_path / 'runs'}\n"
                      f"submissions_dir: {tmp_path / 'submissions'}\n")
    (tmp_path / "kernel.yaml").write_text("mode: inference\naccelerator: NvidiaTeslaT4\n")
    exp = ["--config", str(config), "--kernel", str(tmp_path / "kernel.yaml")]
    trail: list[str] = []

    def step(*argv: str) -> tuple[int, str, str]:
        seen = len(standin.log)
        code = main([*argv])
        trail.append(f"# podium {argv[0]} -> exit {code}")
        trail.extend(standin.log[seen:])
        printed = capsys.readouterr()
        return code, printed.out, printed.err

    assert step("run", "--config", str(config))[0] == 0  # trains here; no request to Kaggle
    code, out, err = step("kernel", *exp)
    assert code == 0, err
    code, out, err = step("kernel", *exp)  # unchanged run: the dataset is not uploaded again
    assert code == 0 and "unchanged" in out, out + err
    code, out, err = step("rehearse", *exp, "--labels", str(HELD_BACK))
    assert code == 0, out + err
    rehearsal = json.loads((tmp_path / "kernels" / "podium-codedemo" / "rehearsal" / "rehearsal.json").read_text())
    assert rehearsal["ok"] and rehearsal["accuracy"] > 0.15
    code, out, err = step("submit", *exp)  # a code competition: nothing pushed yet, so nothing is sent
    assert code == 2 and "make kernel" in err and "Traceback" not in err
    assert step("push", *exp)[0] == 0
    assert step("status", *exp, "--poll-interval", "0.01")[0] == 0
    code, out, err = step("submit", *exp, "--poll-interval", "0.01")
    assert code == 0 and "public score" in out, out + err

    ref = "podium-tester/podium-codedemo"
    (saved,) = standin.kernels[ref].versions  # one version, offline, reading the published run
    assert saved.get("enableInternet") in (False, None) and saved.get("competitionDataSources") == ["demo"]
    assert any(source.endswith("-run") for source in saved.get("datasetDataSources") or [])
    assert "RUN_TOKEN" in saved.get("text", "") and "train_run" not in saved.get("text", "")
    assert len(standin.requests_named("CreateDataset")) == 1
    assert len(standin.requests_named("SaveKernel")) == 1
    assert len(standin.requests_named("CreateCodeSubmission")) == 1
    with (tmp_path / "submissions" / "log.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert (row["file"], row["status"]) == (f"kernel:{ref}@v1", "scored")
    (tmp_path / "server.log").write_text("\n".join(trail) + "\n")
    print("\n".join(trail))
    print(f"rehearsal: wall {rehearsal['wall_seconds']:.1f} s, accuracy {rehearsal['accuracy']:.4f}")
