"""The drafted spec as one record: each field's value with the reason it was chosen (`Drafted`), written as
YAML with the reason beside its field, and the fields every draft shares whatever the layout.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podium.data.advice import looks_like_symbols
from podium.data.competitions import CompetitionSpec
from podium.errors import PodiumError
from podium.io import write_text
from podium.spec.scan import few

LINE = 110  # width of the drafted YAML
NO_SAMPLE = "NOT FOUND: name the competition's sample submission CSV here"
CLASSES_NOTE = "empty: the sorted labels found in train; list them to fix the order a submission needs"


@dataclass(frozen=True)
class Drafted:
    """A spec field's drafted value and why: the reason is the comment written beside it."""

    value: Any
    reason: str = ""


@dataclass
class Draft:
    fields: dict[str, Drafted]  # spec field -> value and reason, in the order written
    header: list[str]  # comment lines above the fields: what was found
    images: dict[str, Any]  # size and channel facts of the sampled images

    @property
    def values(self) -> dict[str, Any]:
        return {key: drafted.value for key, drafted in self.fields.items()}

    @property
    def notes(self) -> dict[str, str]:
        return {key: drafted.reason for key, drafted in self.fields.items() if drafted.reason}

    def set(self, **values: Any) -> None:
        """Other values for some fields (a field not drafted is added last); each keeps the reason it had."""
        for key, value in values.items():
            self.fields[key] = Drafted(value, self.fields[key].reason if key in self.fields else "")

    def yaml_text(self) -> str:
        lines = [f"# {part}" for line in self.header for part in textwrap.wrap(line, LINE - 2)]
        for key, drafted in self.fields.items():
            line = f"{key}: {_yaml_value(drafted.value)}"
            note = drafted.reason
            if note and len(line) + len(note) + 4 > LINE:  # a long comment goes above its field
                lines += [f"# {part}" for part in textwrap.wrap(note, LINE - 2)] + [line]
            else:
                lines.append(f"{line}  # {note}" if note else line)
        return "\n".join(lines) + "\n"


def slug_of(source: str | os.PathLike, slug: str | None = None) -> str:
    """The slug given, else one made from the source folder's name."""
    return slug or _slug(Path(source).resolve().name)


def identity_fields(slug: str) -> dict[str, Drafted]:
    """The fields every draft opens with: which competition, and where its files come from."""
    return {"slug": Drafted(slug, "the Kaggle competition's slug (its URL); `make data` without SRC downloads it"),
            "title": Drafted("", "free text"),
            "source": Drafted("kaggle", "kaggle: downloaded by `make data`, or copied from SRC=<folder>")}


def closing_fields(slug: str) -> dict[str, Drafted]:
    """How the competition takes a submission, and where its rules are accepted."""
    return {"submission_kind": Drafted("csv", "csv: upload submission.csv; code: Kaggle re-runs a kernel version "
                                              "(check the page)"),
            "rules_url": Drafted(f"https://www.kaggle.com/competitions/{slug}/rules",
                                 "accept the rules there once before `make data` can download")}


def finished(fields: dict[str, Drafted], header: list[str], facts: dict[str, Any],
             source: str | os.PathLike) -> Draft:
    """The draft: its header says where it came from and what the images are; fields in the spec's order."""
    header[:0] = [f"Competition spec drafted by `podium spec` from {Path(source)}. Read every line: each comment",
                  "says how the value was found. Reference: docs/competition-spec.md.",
                  f"images: {facts['summary']}"] + ([facts["advice"]] if facts.get("advice") else [])
    ordered = [f.name for f in dataclasses.fields(CompetitionSpec)]
    return Draft({k: fields[k] for k in sorted(fields, key=ordered.index)}, header, facts)


def sample_note(rows: int, columns: list[str]) -> str:
    return f"{rows} rows, columns {list(columns)}"


def flip_guess(classes: list[str]) -> Drafted:
    """flip_invariant: false for classes that are symbols (a mirrored digit or letter is another), else unset."""
    if classes and looks_like_symbols(classes):
        return Drafted(False, f"class names are single characters ({few(classes)}): digits/letters change meaning "
                              f"when mirrored, so flips are refused. Set true if these are codes of pictures that "
                              f"keep their class")
    return Drafted(None, "unset: flips allowed; false if a mirror image changes the class (digits, letters, text)")


def write_draft(draft: Draft, out: str | os.PathLike, force: bool = False) -> Path:
    """Write the draft; an existing spec is someone's work and is only replaced with force."""
    out = Path(out)
    if out.exists() and not force:
        raise PodiumError(f"Competition spec {out} already exists.", expected="a new file, or --force",
                          received=str(out), fix="pass FORCE=1 to draft over it, or OUT=<another path>")
    return write_text(out, draft.yaml_text())


def default_out(source: str | os.PathLike, slug: str | None = None) -> Path:
    """Where `make spec` writes without OUT=: beside the experiment configs that will name it."""
    return Path("configs") / "competitions" / f"{slug_of(source, slug)}.yaml"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "my-competition"


def _yaml_value(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {_yaml_value(v)}" for key, v in value.items()) + "}"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    if text and re.fullmatch(r"[A-Za-z0-9_./:-]+", text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)
