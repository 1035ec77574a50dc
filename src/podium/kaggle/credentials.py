"""Kaggle credentials: found where the official client looks, checked before any request, never shown.

Order (the client's own): KAGGLE_API_TOKEN (the token, or a path to a file holding it) > KAGGLE_USERNAME +
KAGGLE_KEY > kaggle.json in KAGGLE_CONFIG_DIR, ~/.kaggle or ~/.config/kaggle. We resolve them ourselves,
instead of letting `import kaggle` log in, so a missing key is a PodiumError with a fix rather than the
client's exit(1), and so every secret is known by value and can be scrubbed from anything podium writes.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

from podium.errors import PodiumError

REDACTED = "[redacted]"


@dataclass(frozen=True)
class Credentials:
    username: str
    key: str = field(default="", repr=False)  # legacy API key (Basic auth)
    token: str = field(default="", repr=False)  # API token (Bearer auth)
    source: str = ""  # where they came from, for messages: never the values
    warnings: tuple[str, ...] = ()

    def secrets(self) -> list[str]:
        return [value for value in (self.key, self.token) if value]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets())


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder the client reads kaggle.json from (same rule as KaggleApi.config_dir)."""
    env = os.environ if env is None else env
    if env.get("KAGGLE_CONFIG_DIR"):
        return Path(env["KAGGLE_CONFIG_DIR"])
    home = Path(env.get("HOME") or Path.home())
    legacy = home / ".kaggle"
    if legacy.exists():
        return legacy
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"


def find_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """The credentials the client would use, or a PodiumError saying how to provide them."""
    env = os.environ if env is None else env
    folder = config_dir(env)
    token = _token(env)
    if token:
        value, source = token
        return Credentials(username=env.get("KAGGLE_USERNAME", ""), token=value, source=source)
    file_values, warnings = _read_kaggle_json(folder / "kaggle.json")
    username = env.get("KAGGLE_USERNAME") or file_values.get("username", "")
    key = env.get("KAGGLE_KEY") or file_values.get("key", "")
    if username and key:
        source = "KAGGLE_USERNAME/KAGGLE_KEY" if env.get("KAGGLE_KEY") else str(folder / "kaggle.json")
        return Credentials(username=username, key=key, source=source, warnings=tuple(warnings))
    raise PodiumError("No Kaggle credentials found.",
                      expected="KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, or a kaggle.json",
                      received=f"none of them (looked in the environment and {folder / 'kaggle.json'})",
                      fix="create a token at https://www.kaggle.com/settings (API section), save kaggle.json "
                          f"to {folder}/ and run chmod 600 on it")


def _token(env: Mapping[str, str]) -> tuple[str, str] | None:
    value = env.get("KAGGLE_API_TOKEN", "")
    if value:
        path = Path(value)
        if len(value) < 4096 and path.is_file():
            return path.read_text(encoding="utf-8").strip(), f"KAGGLE_API_TOKEN file {path}"
        return value.strip(), "KAGGLE_API_TOKEN"
    home = Path(env.get("HOME") or Path.home())
    for path in (home / ".kaggle" / "access_token", home / ".kaggle" / "access_token.txt"):
        if path.is_file() and path.read_text(encoding="utf-8").strip():
            return path.read_text(encoding="utf-8").strip(), str(path)
    return None


def _read_kaggle_json(path: Path) -> tuple[dict[str, str], list[str]]:
    if not path.is_file():
        return {}, []
    warnings = []
    mode = path.stat().st_mode
    if os.name != "nt" and mode & (stat.S_IRGRP | stat.S_IROTH):
        warnings.append(f"{path} is readable by other users (mode {stat.filemode(mode)}); "
                        f"run: chmod 600 {path}")
    try:
        values = json.loads(path.read_text(encoding="utf-8") or "{}")
    except json.JSONDecodeError as exc:
        raise PodiumError(f"{path} is not valid JSON.", expected='{"username": "...", "key": "..."}',
                          received=f"a parse error at line {exc.lineno}",
                          fix="download a fresh kaggle.json from https://www.kaggle.com/settings") from None
    if not isinstance(values, dict):
        values = {}
    return {k: str(v) for k, v in values.items() if k in ("username", "key")}, warnings

