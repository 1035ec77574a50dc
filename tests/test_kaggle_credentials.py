"""Credentials: found as the client finds them, checked, never written anywhere podium writes or sends."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kaggle_standin import kaggle_home, standin  # noqa: F401 (fixtures)
from podium.kaggle.credentials import find_credentials
from podium.errors import PodiumError

REPO = Path(__file__).resolve().parents[1]


def test_order_token_then_environment_then_kaggle_json(tmp_path):
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "kaggle.json").write_text(json.dumps({"username": "filer", "key": "file-key"}))
    (config / "kaggle.json").chmod(0o600)
    env = {"HOME": str(tmp_path), "KAGGLE_CONFIG_DIR": str(config)}
    assert (find_credentials(env).username, find_credentials(env).key) == ("filer", "file-key")
    env |= {"KAGGLE_USERNAME": "envy", "KAGGLE_KEY": "env-key"}
    assert (find_credentials(env).username, find_credentials(env).key) == ("envy", "env-key")
    token_file = tmp_path / "token"
    token_file.write_text("tok-123\n")
    creds = find_credentials(env | {"KAGGLE_API_TOKEN": str(token_file)})
    assert (creds.token, creds.key) == ("tok-123", "")
    assert "tok-123" not in repr(creds) and "env-key" not in repr(find_credentials(env))


def test_no_credentials_says_where_to_get_them(tmp_path):
    with pytest.raises(PodiumError, match="kaggle.com/settings") as err:
        find_credentials({"HOME": str(tmp_path)})
    assert str(tmp_path / ".config" / "kaggle" / "kaggle.json") in str(err.value)


def test_world_readable_kaggle_json_warns(standin, kaggle_home, caplog):
    from podium.kaggle.client import KaggleSession

    path = kaggle_home / ".kaggle" / "kaggle.json"
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="podium.kaggle"):
        KaggleSession()
    assert f"chmod 600 {path}" in caplog.text
    path.chmod(0o600)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="podium.kaggle"):
        KaggleSession()
    assert caplog.text == ""


def test_api_token_is_introspected_and_sent_as_bearer(standin, kaggle_home, monkeypatch):
    from podium.kaggle.client import KaggleSession, list_submissions

    standin.token = "tok-abcdef-SECRET"
    monkeypatch.setenv("KAGGLE_API_TOKEN", standin.token)
    standin.add_competition("demo", {})
    session = KaggleSession()
    assert session.username == standin.username
    assert list_submissions(session, "demo") == []
    assert standin.log == ["POST /api/v1/security.OAuthService/IntrospectToken -> 200",
                           "POST /api/v1/competitions.CompetitionApiService/ListSubmissions -> 200"]
    monkeypatch.setenv("KAGGLE_API_TOKEN", "expired")
    with pytest.raises(PodiumError, match="kaggle.com/settings"):  # 401 or inactive: both say where
        KaggleSession()


def test_first_import_of_the_client_sends_nothing(standin, kaggle_home, monkeypatch):
    """`import kaggle` logs in at import: in a fresh process (every command's first session), whatever ran
    before in this one, the token is still introspected once, by podium."""
    standin.token = "tok-abcdef-SECRET"
    monkeypatch.setenv("KAGGLE_API_TOKEN", standin.token)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")])))
    code = "from podium.kaggle.client import KaggleSession; print(KaggleSession().username)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == standin.username, done.stderr
    assert standin.log == ["POST /api/v1/security.OAuthService/IntrospectToken -> 200"]


def test_no_secret_in_any_artefact_after_the_whole_flow(standin, kaggle_home, demo_data, tmp_path, capsys):
    """data, submit, kernel, push, status, output through the CLI; then every file and line is scanned."""
    from podium.cli.main import main
    from podium.config import load_config, save_config
    from podium.io import write_json

    secret = standin.key
    exp = ["--config", str(REPO / "configs" / "demo.yaml"), f"data_dir={demo_data}", f"runs_dir={tmp_path}/runs",
           f"submissions_dir={tmp_path}/submissions"]
    cfg = load_config(REPO / "configs" / "demo.yaml", exp[2:])
    save_config(cfg, cfg.run_dir / "config.yaml")
    write_json(cfg.run_dir / "metrics.json", {"cv_mean": 0.5})
    sample = pd.read_csv(demo_data / "demo" / "sample_submission.csv", dtype=str).assign(label="cat")
    (tmp_path / "submissions" / "demo").mkdir(parents=True)
    sample.to_csv(tmp_path / "submissions" / "demo" / f"{cfg.run_id}.csv", index=False)
    standin.add_competition("demo", {})
    standin.add_competition("cifar10", {"sample_submission.csv": b"id,label\n1,cat\n", "train.zip": b"PK\x05\x06" +
                                        b"\0" * 18, "test.zip": b"PK\x05\x06" + b"\0" * 18})
    weights = tmp_path / "w.weights.h5"
    weights.write_bytes(b"\x89HDF weights")
    kernel_yaml = tmp_path / "kernel.yaml"
    kernel_yaml.write_text(f"weights_file: {weights}\naccelerator: NvidiaTeslaT4\n")

    from podium.kaggle.client import download_competition
    from podium.data.competitions import load_competition

    download_competition(load_competition("cifar10"), tmp_path / "data" / "raw" / "cifar10")
    assert main(["submit", *exp, "--poll-interval", "0.01", "--timeout", "5"]) == 0
    assert main(["kernel", *exp, "--kernel", str(kernel_yaml)]) == 0
    assert main(["push", *exp, "--kernel", str(kernel_yaml)]) == 0
    kernel = standin.kernels["podium-tester/podium-demo"]
    token = json.loads((tmp_path / "kernels" / "podium-demo" / "podium-kernel.json").read_text())["token"]
    kernel.outputs = {"submission.csv": b"id,label\n1,cat\n", "podium-run.json": json.dumps({"token": token}).encode()}
    kernel.log = f"printing the environment by mistake: KAGGLE_KEY={secret}\n"
    assert main(["status", *exp, "--kernel", str(kernel_yaml), "--poll-interval", "0.01"]) == 0
    assert main(["output", *exp, "--kernel", str(kernel_yaml)]) == 0
    printed = capsys.readouterr()
    assert "public score 0.91250" in printed.out and "COMPLETE" in printed.out

    kaggle_json = kaggle_home / ".kaggle" / "kaggle.json"
    scanned = [p for p in tmp_path.rglob("*") if p.is_file() and p != kaggle_json]
    assert any(p.name == "log.csv" for p in scanned) and any(p.name == "kernel.log" for p in scanned)
    assert any(p.name == "podium_kernel.py" for p in scanned)
    leaks = [str(p) for p in scanned if secret.encode() in p.read_bytes()]
    assert leaks == []
    assert secret not in printed.out + printed.err
    sent = [name for name, body in standin.bodies if secret.encode() in body]  # pushed kernel, dataset, CSV
    assert sent == []
    assert "[redacted]" in (tmp_path / "runs" / "podium-demo-v1" / "kernel.log").read_text()
