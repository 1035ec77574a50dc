"""docs/config-reference.md, generated from ExperimentConfig's own declarations, so it cannot drift from them.

Each key's type, default, valid values (a numeric key's declared Range, a Literal's choices, the registry a
name is checked against) and role (its part in the run id) come from the dataclass; its notes are the
comments written beside and above it in config.py, read with `tokenize` (a comment on the field's line, the
comment lines just above it; the lines opening a `# ---- section ----` describe the section). Regenerate
with `podium config --reference docs/config-reference.md`; tests/test_config_reference.py fails when the
committed page is not what this writes.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import io
import re
import tokenize
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from podium.catalog import CHOICES
from podium.config import ADDED_LATER, PLUMBING, PREDICTS, TRAINS, ExperimentConfig, role_of
from podium.data.competitions import builtin_slugs
from podium.io import write_text
from podium.task_keys import TASK_KEYS

PAGE = Path("docs/config-reference.md")
COMMAND = f"podium config --reference {PAGE}"
SECTION = re.compile(r"^#\s*-{3,}\s*(.*?)\s*-*\s*$")
ROLE_TEXT = {
    TRAINS: "changes the trained weights: part of the run id",
    ADDED_LATER: "trains, added after runs existed: part of the run id only when set away from its default",
    PREDICTS: "read at predict time only: not part of the run id; named in a submission that differs",
    PLUMBING: "paths, verbosity, workers: not part of the run id",
}


@dataclass
class Key:
    name: str
    type: str
    default: str
    valid: str
    role: str
    note: str


@dataclass
class Section:
    title: str
    note: str = ""
    keys: list[Key] = field(default_factory=list)


def config_reference(cls: type = ExperimentConfig) -> str:
    """The markdown page: one table per section of the config dataclass `cls`, in declaration order."""
    lines = ["# Config keys", "",
             f"Generated from `ExperimentConfig` (src/podium/config.py) by `{COMMAND}`: edit the field or its",
             "comment there, never this page. A key is set in an experiment YAML (`key: value`) or on the command",
             "line (`ARGS=\"key=value\"`); an unknown key or a value outside its range is an error naming the key.",
             "", "Roles (a key's part in the run id `<name>-<hash>`):", ""]
    lines += [f"- **{role}**: {text}" for role, text in ROLE_TEXT.items()]
    for section in _sections(cls):
        lines += ["", f"## {section.title}", ""]
        if section.note:
            lines += [_escape(section.note), ""]
        lines += ["| key | type | default | valid values | role | note |", "|---|---|---|---|---|---|"]
        lines += [f"| `{k.name}` | {_escape(k.type)} | {_escape(k.default)} | {_escape(k.valid)} | {k.role} | "
                  f"{_escape(k.note)} |" for k in section.keys]
    return "\n".join(lines) + "\n"


def write_config_reference(path: str | Path = PAGE) -> Path:
    return write_text(path, config_reference())


# ---- reading the declarations ---------------------------------------------------------------------
def _sections(cls: type) -> list[Section]:
    hints = typing.get_type_hints(cls)
    comments = _comments(cls)
    sections: list[Section] = []
    for f in dataclasses.fields(cls):
        title, section_note, above, beside = comments.get(f.name, ("", "", "", ""))
        if not sections or (title and title != sections[-1].title):
            sections.append(Section(title or "keys", section_note))
        note = _sentences(above, beside, _task_note(f.name))
        sections[-1].keys.append(Key(f.name, _type_text(hints[f.name]), _value_text(_default(f)),
                                     _valid_text(f, hints[f.name]), role_of(f), note))
    return sections


def _sentences(*parts: str) -> str:
    """Notes joined as sentences: a part that does not end in punctuation gets a full stop before the next."""
    kept = [part for part in parts if part]
    return " ".join(part if part[-1] in ".:;!?" or k == len(kept) - 1 else part + "."
                    for k, part in enumerate(kept))


def _comments(cls: type) -> dict[str, tuple[str, str, str, str]]:
    """field name -> (section title, section note, comment lines above it, comment on its lines)."""
    source = inspect.getsource(cls)
    comment_at = {tok.start[0]: tok.string.lstrip("#").strip()
                  for tok in tokenize.generate_tokens(io.StringIO(source).readline) if tok.type == tokenize.COMMENT}
    (cls,) = ast.parse(source).body
    found: dict[str, tuple[str, str, str, str]] = {}
    title, section_note, previous_end = "", "", cls.body[0].end_lineno if cls.body else cls.lineno
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            previous_end = node.end_lineno
            continue
        above: list[str] = []
        for number in range(previous_end + 1, node.lineno):
            if number not in comment_at:
                continue
            header = SECTION.match("# " + comment_at[number])
            if header:
                title, section_note, above = header.group(1), "", []
            else:
                above.append(comment_at[number])
        if title and not any(values[0] == title for values in found.values()):
            section_note, above = " ".join(above), []  # the comment lines opening a section describe it
        beside = " ".join(comment_at[n] for n in range(node.lineno, node.end_lineno + 1) if n in comment_at)
        found[node.target.id] = (title, section_note, " ".join(above), beside)
        previous_end = node.end_lineno
    return found


def _monitors() -> str:
    """What each task lets `monitor` name (ExperimentConfig._check_task)."""
    return "; ".join(f"task={task}: " + ("any logged metric" if keys.any_monitor else
                                         ", ".join(f"val_{m}, {m}" for m in keys.logged))
                     for task, keys in TASK_KEYS.items())


def _task_note(name: str) -> str:
    """augment/tta: what each task that restricts them accepts (podium.task_keys)."""
    attribute = {"augment": "augments", "tta": "tta_views"}.get(name)
    if not attribute:
        return ""
    parts = [f"task={task}: a subset of [{', '.join(getattr(keys, attribute))}]"
             for task, keys in TASK_KEYS.items() if getattr(keys, attribute) is not None]
    return "; ".join(parts) + "." if parts else ""


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _type_text(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "str"
    if origin in (typing.Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _type_text(a) for a in typing.get_args(hint))
    if origin is list:
        return f"list of {_type_text(typing.get_args(hint)[0])}"
    return getattr(hint, "__name__", str(hint))


def _valid_text(f: dataclasses.Field, hint: Any) -> str:
    bounds = f.metadata.get("range")
    if bounds is not None:
        text = bounds.text(f.name)
        return f"each item: {text}" if typing.get_origin(hint) is list else text
    choices = _literal_choices(hint)
    if choices:
        return "one of: " + ", ".join(_value_text(choice) for choice in choices)
    if f.name in CHOICES:  # the names ExperimentConfig._check_values checks against
        names = ", ".join(CHOICES[f.name])
        return f"each one of: {names}" if typing.get_origin(hint) is list else f"one of: {names}"
    if f.name == "task":  # the registered tasks (podium.tasks.register)
        return "one of: " + ", ".join(TASK_KEYS)
    if f.name == "monitor":
        return _monitors()
    if f.name == "competition":
        return f"a built-in slug ({', '.join(builtin_slugs())}) or a spec YAML path"
    if hint is bool or bool in typing.get_args(hint):
        return "true, false" + (", null" if type(None) in typing.get_args(hint) else "")
    return ""


def _literal_choices(hint: Any) -> list[Any]:
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    for arg in typing.get_args(hint):
        if typing.get_origin(arg) is Literal:
            return list(typing.get_args(arg))
    return []


def _value_text(value: Any) -> str:
    """A value as it is written in the YAML: true, null, [identity, hflip], "" for the empty string."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_value_text(item) for item in value) + "]"
    if isinstance(value, str):
        return value if value else '""'
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _escape(text: str) -> str:
    return text.replace("|", "\\|")

