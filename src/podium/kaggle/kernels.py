"""`make kernel`: render kernels/<slug>/ so one config trains on Kaggle's GPUs exactly as it does here.

The folder holds kernel-metadata.json and one script, podium_kernel.py: a copy of
podium/kaggle/scripts/kernel.py whose settings block says to run the training job
(scripts/training_kernel.py: the whole job as `podium run` runs it, podium.workflow.run_all), reading the
competition from /kaggle/input and writing runs/, submissions/ and submission.csv to /kaggle/working. The
scripts are real Python files; rendering fills only the settings block (fill_script), never formats code.

podium's own code is inlined into the script (a deterministic zip of src/podium, base64), not shipped
as a Kaggle dataset. Why: the code then belongs to the kernel version that runs it. A dataset version is
processed asynchronously after upload, so a kernel pushed right after `datasets version` can mount the
previous code without any error; inlining also needs no pip and no internet (code competitions), and
leaves nothing to keep in sync. Datasets are used for what is big and slow to change: pretrained weights
when the kernel has no internet (`weights_file`, uploaded as <owner>/<slug>-weights by `make kernel`).

Kernel settings (accelerator, privacy, internet, extra datasets) are not training settings, so they live
in a small KernelSpec YAML (`KERNEL=kernel.yaml`), not in ExperimentConfig. load_kernel_spec is the one
place they are read, and it checks each value against its field's type (a quoted "false" is not False).
podium-kernel.json records the run a kernel runs (run_record); make push carries it into push.json and
make submit refuses a pushed version of another run (pushed_run_changes).

`mode: inference` renders a code competition's offline kernel instead: no training, internet off, the
trained run packaged as a dataset (podium.kaggle.inference.package_run) or read from a training kernel's output,
and a script that only calls podium.kaggle.inference.predict_from_package on the test files it finds when it
runs. `make rehearse` (podium.kaggle.rehearse) runs that script here first.
"""

from __future__ import annotations

import base64
import dataclasses
import difflib
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from podium.data.competitions import SPEC_DIR, load_competition
from podium.config import ExperimentConfig
from podium.errors import PodiumError
from podium.paths import check_name
from podium.tasks.base import Task
from podium.training import time_budget
from podium.io import file_sha256, hash_file, read_yaml_mapping, write_json, write_text
from podium.kaggle.inference import INFERENCE_KEYS, package_run, run_dataset_slug
from podium.workflow import measured_tta

SCRIPT_NAME = "podium_kernel.py"  # what a rendered kernel's script is called in kernels/<slug>/
SCRIPTS = Path(__file__).with_name("scripts")  # the kernel as a real file, and its jobs: podium.kaggle.scripts
KERNEL_SCRIPT = "kernel.py"  # what a rendered kernel's script is a copy of, its settings block filled
SETTINGS_START = "# >>> podium kernel settings"  # the block fill_script fills, between these two lines
SETTINGS_END = "# <<< podium kernel settings"
# accelerator name -> (machine_shape sent to Kaggle, enable_gpu, enable_tpu); names as `kaggle kernels push
# --accelerator` takes them. "TPU" is a podium alias for TpuV6E8.
ACCELERATORS = {
    "none": ("", False, False),
    "NvidiaTeslaT4": ("NvidiaTeslaT4", True, False),
    "NvidiaTeslaP100": ("NvidiaTeslaP100", True, False),
    "TPU": ("TpuV6E8", False, True),
    "TpuV6E8": ("TpuV6E8", False, True),
}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{3,48}[a-z0-9]$")
_REF = re.compile(r"^[A-Za-z0-9_-]+/[a-z0-9][a-z0-9-]{3,48}[a-z0-9]$")
MODES = ("train", "inference")
RUN_SOURCES = ("dataset", "kernel")


@dataclass(frozen=True)
class KernelSpec:
    slug: str = ""  # default: podium-<config name>
    title: str = ""  # default: the slug in words (Kaggle derives the slug from the title)
    owner: str = ""  # default: the Kaggle user of the credentials
    accelerator: str = "NvidiaTeslaT4"
    is_private: bool = True
    enable_internet: bool = True  # False for code competitions: no pip, no downloads inside the kernel
    dataset_sources: tuple[str, ...] = ()  # extra datasets to attach, owner/slug
    weights_file: str = ""  # local weights uploaded as the <owner>/<slug>-weights dataset and used by the run
    timeout_seconds: int = 0  # 0: Kaggle's default
    # train: the script trains and predicts (as make train + make predict). inference: the script only
    # predicts, offline, from a trained run: what a code competition re-runs on its hidden test set.
    mode: str = "train"
    run_source: str = "dataset"  # inference: the run comes as a dataset make kernel uploads, or as ...
    run_kernel: str = ""  # ... the output of this training kernel (owner/slug), attached as a kernel source

    def resolved_slug(self, cfg: ExperimentConfig) -> str:
        return self.slug or f"podium-{cfg.name}".lower().replace("_", "-")


def load_kernel_spec(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> KernelSpec:
    """defaults < kernel YAML < overrides; unknown keys are errors naming the valid ones."""
    values: dict[str, Any] = {}
    if path:
        path = Path(path)
        if not path.is_file():
            raise PodiumError(f"Kernel spec {path} does not exist.", expected="a YAML file of kernel settings",
                              received=str(path), fix="write e.g. 'accelerator: NvidiaTeslaT4' into it")
        values.update(read_yaml_mapping(path, "Kernel spec", "a file of kernel settings", "write one 'key: value' per line"))
    values.update(overrides or {})
    known = [f.name for f in dataclasses.fields(KernelSpec)]
    for key in values:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise PodiumError(f"Unknown kernel setting '{key}'.", expected=f"one of: {', '.join(known)}",
                              received=repr(key), fix=f"did you mean '{close[0]}'?" if close else "remove it")
    where = f"kernel spec {path}" if path else "the kernel settings"
    for key in list(values):
        values[key] = _typed(key, values[key], where)
    _check_mode(values)
    spec = KernelSpec(**values)
    if spec.slug:
        check_name(spec.slug, "slug (kernel spec)", "podium-baseline")
    if spec.accelerator not in ACCELERATORS:
        raise PodiumError("Unknown kernel accelerator.", expected=f"one of: {', '.join(ACCELERATORS)}",
                          received=repr(spec.accelerator), fix="set accelerator to one of the listed names")
    return spec


_FIELD_TYPES = {f.name: f.type for f in dataclasses.fields(KernelSpec)}  # annotations, as text
_YAML_BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}


def _typed(key: str, value: Any, where: str) -> Any:
    """The one check of a kernel setting's type, where kernel specs are read: a quoted "false" is not False
    (a non-empty string is true), a string is not a list (it would split into characters), a timeout is a
    whole number of seconds >= 0. Raises a PodiumError naming the key, what it takes and what it got."""
    kind = _FIELD_TYPES[key]
    shown = f"{value!r} ({type(value).__name__})"

    def refuse(expected: str, fix: str) -> PodiumError:
        return PodiumError(f"Kernel setting '{key}' in {where} has the wrong type.", expected=expected,
                           received=shown, fix=fix)

    if kind == "bool":
        if isinstance(value, bool):
            return value
        hint = f"write {key}: {str(value).strip().lower()} without quotes" if isinstance(value, str) and \
            value.strip().lower() in _YAML_BOOL_WORDS else f"write {key}: true or {key}: false"
        raise refuse("true or false (a YAML boolean, unquoted)", hint)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise refuse("a whole number of seconds (0: Kaggle's default)", f"write e.g. {key}: 3600, unquoted")
        if value < 0:
            raise refuse("a whole number of seconds >= 0 (0: Kaggle's default)", f"write e.g. {key}: 3600")
        return value
    if kind.startswith("tuple"):
        if not isinstance(value, (list, tuple)):
            raise refuse("a list of owner/slug names, e.g. [alice/my-data] (or one per line, '- alice/my-data')",
                         f"write {key}: [{value}]" if isinstance(value, str) else f"write {key}: [] for none")
        bad = [item for item in value if not isinstance(item, str) or item.count("/") != 1 or not all(item.split("/"))]
        if bad:
            raise PodiumError(f"Kernel setting '{key}' in {where} holds an item that is not owner/slug.",
                              expected="a list of owner/slug names", received=repr(bad[0]),
                              fix=f"write each item of {key} as <owner>/<dataset-slug>")
        return tuple(value)
    if not isinstance(value, str):  # every other setting is text
        raise refuse("text", f"write {key}: <text> (quote it if YAML reads it as a number or a boolean), "
                             "or remove the key for the default")
    return value


def _check_mode(values: dict[str, Any]) -> None:
    """Inference kernels run with internet off (code competitions refuse others): forced off, and an
    explicit `enable_internet: true` is refused rather than silently dropped."""
    mode, source = values.get("mode", "train"), values.get("run_source", "dataset")
    if mode not in MODES:
        raise PodiumError("Unknown kernel mode.", expected=f"one of: {', '.join(MODES)}", received=repr(mode),
                          fix="mode: inference for a code competition's offline kernel, else leave it out")
    if source not in RUN_SOURCES:
        raise PodiumError("Unknown kernel run_source.", expected=f"one of: {', '.join(RUN_SOURCES)}",
                          received=repr(source), fix="run_source: dataset (uploaded by make kernel) or kernel")
    if mode != "inference":
        return
    if values.get("enable_internet") is True:
        raise PodiumError("An inference kernel runs with internet off.", expected="enable_internet: false (or "
                          "left out)", received="enable_internet: true, mode: inference",
                          fix="remove enable_internet: code competitions reject kernels with internet on")
    if values.get("weights_file"):
        raise PodiumError("An inference kernel needs no weights_file.", expected="no weights_file",
                          received=repr(values["weights_file"]), fix="remove it: the run's checkpoints hold "
                          "every weight")
    if source == "kernel" and not _REF.match(str(values.get("run_kernel", ""))):
        raise PodiumError("run_source: kernel needs the training kernel to read the run from.",
                          expected="run_kernel: <owner>/<kernel-slug>", received=repr(values.get("run_kernel", "")),
                          fix="set run_kernel to the kernel that trained the run (its output holds runs/<run_id>/)")
    values["enable_internet"] = False


@dataclass
class RenderedKernel:
    folder: Path
    ref: str
    metadata: dict[str, Any]
    token: str
    weights_dataset: Path | None  # folder to create/version as a dataset, when weights ship that way
    run_dataset: Path | None = None  # inference: the packaged run to create/version as a dataset


def render_kernel(cfg: ExperimentConfig, task: Task, spec: KernelSpec, owner: str,
                  out_root: str | Path = "kernels") -> RenderedKernel:
    """Write kernels/<slug>/ (metadata, script, and the weights dataset folder when needed); no network.
    `task`: the run's task object (make kernel resolves it), for packaging an inference kernel's run."""
    owner = spec.owner or owner
    slug = spec.resolved_slug(cfg)
    if not _SLUG.match(slug):
        raise PodiumError("The kernel slug is not one Kaggle accepts.", expected="5-50 of a-z, 0-9 and '-'",
                          received=repr(slug), fix="set slug: in the kernel spec")
    if spec.mode == "inference":
        return _render_inference(cfg, task, spec, owner, slug, Path(out_root) / slug)
    weights_slug = f"{slug[:42]}-weights"  # Kaggle dataset slugs are at most 50 characters
    if not spec.weights_file and not spec.enable_internet and cfg.weights == "imagenet":
        raise PodiumError("A kernel without internet cannot download ImageNet weights.",
                          expected="weights_file: <local weights file> in the kernel spec (uploaded as a dataset), "
                                   "or weights: none", received="weights: imagenet, enable_internet: false",
                          fix="set weights_file to the backbone's weights file (e.g. ~/.keras/models/...)")
    folder = Path(out_root) / slug
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    sources, weights_input, weights_folder = list(spec.dataset_sources), "", None
    if spec.weights_file:
        weights_input = f"/kaggle/input/{weights_slug}/{Path(spec.weights_file).name}"
        sources.append(f"{owner}/{weights_slug}")
        weights_folder = _weights_dataset(folder / "weights-dataset", Path(spec.weights_file),
                                          f"{owner}/{weights_slug}")
    metadata = _metadata(cfg, spec, owner, slug, sources, [], spec.enable_internet)
    write_json(folder / "kernel-metadata.json", metadata)
    budget = kernel_budget(cfg, spec)
    write_text(folder / SCRIPT_NAME, kernel_script(cfg, token, weights_input, budget))
    write_json(folder / "podium-kernel.json", {"token": token, "config": cfg.name, **run_record(cfg, "train"),
                                               "timeout_seconds": spec.timeout_seconds,
                                               "session_budget_seconds": budget,
                                               "weights_dataset": str(weights_folder or "")})
    return RenderedKernel(folder, metadata["id"], metadata, token, weights_folder)


def _render_inference(cfg: ExperimentConfig, task: Task, spec: KernelSpec, owner: str, slug: str, folder: Path
                      ) -> RenderedKernel:
    """The offline kernel of a code competition: the run comes packaged as a dataset (or a training
    kernel's output), the script predicts and writes submission.csv; no pip, no internet."""
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    sources, kernels, run_dataset = list(spec.dataset_sources), [], None
    if spec.run_source == "dataset":
        ref = f"{owner}/{run_dataset_slug(slug)}"
        run_dataset = package_run(cfg, task, folder / "run-dataset", ref)
        sources.append(ref)
    else:
        kernels.append(spec.run_kernel)
    metadata = _metadata(cfg, spec, owner, slug, sources, kernels, False)
    write_json(folder / "kernel-metadata.json", metadata)
    write_text(folder / SCRIPT_NAME, inference_script(cfg, token))
    write_json(folder / "podium-kernel.json", {"token": token, "config": cfg.name, **run_record(cfg, "inference"),
                                               "mode": "inference", "run_source": spec.run_source,
                                               "run_kernel": spec.run_kernel,
                                               "timeout_seconds": spec.timeout_seconds,
                                               "run_dataset": str(run_dataset or ""), "weights_dataset": ""})
    return RenderedKernel(folder, metadata["id"], metadata, token, None, run_dataset)


def _metadata(cfg: ExperimentConfig, spec: KernelSpec, owner: str, slug: str, sources: list[str],
              kernels: list[str], internet: bool) -> dict[str, Any]:
    """kernel-metadata.json, as `kaggle kernels push` reads it (machine_shape only with an accelerator)."""
    machine_shape, gpu, tpu = ACCELERATORS[spec.accelerator]
    metadata = {
        "id": f"{owner}/{slug}", "title": spec.title or slug.replace("-", " "), "code_file": SCRIPT_NAME,
        "language": "python", "kernel_type": "script", "is_private": spec.is_private, "enable_gpu": gpu,
        "enable_tpu": tpu, "enable_internet": internet, "dataset_sources": sources,
        "competition_sources": [load_competition(cfg.competition).slug], "kernel_sources": kernels,
        "model_sources": [],
    }
    if machine_shape:
        metadata["machine_shape"] = machine_shape
    return metadata


RUN_RECORD_KEYS = ("run_id", "config_hash", "run_digest", "settings")


def run_record(cfg: ExperimentConfig, mode: str) -> dict[str, Any]:
    """What a rendered kernel was made from, carried into push.json by `make push`: the run id, its config
    hash, for an inference kernel the digest of the run's checkpoints and the inference-time settings.
    `make submit` compares it with the run now (pushed_run_changes)."""
    record: dict[str, Any] = {"run_id": cfg.run_id, "config_hash": cfg.config_hash(), "run_digest": "",
                              "settings": None}
    if mode == "inference":
        record["run_digest"] = checkpoints_digest(cfg.run_dir)
        record["settings"] = inference_settings(cfg)
    return record


def inference_settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The predict-time settings an inference kernel applies over its package's config, tta_auto resolved as
    package_run and `make predict` resolve it: the kernel never brings back views the run measured to hurt."""
    resolved = measured_tta(cfg)[0]
    return json.loads(json.dumps({key: getattr(resolved, key) for key in INFERENCE_KEYS}))


def checkpoints_digest(run_dir: str | Path) -> str:
    """sha256 over the run's fold-*/best.keras (relative path and bytes); "" when it has none here."""
    digest, found = hashlib.sha256(), sorted(Path(run_dir).glob("fold-*/best.keras"))
    for path in found:
        digest.update(f"{path.relative_to(run_dir).as_posix()}\0".encode())
        hash_file(digest, path)
    return digest.hexdigest() if found else ""


def pushed_run_changes(pushed: dict[str, Any], cfg: ExperimentConfig) -> list[str]:
    """How the run asked for now differs from the run the pushed kernel version was rendered from."""
    if "run_id" not in pushed or "config_hash" not in pushed:
        return ["push.json does not say which run was pushed (pushed by an older podium)"]
    changes = []
    if pushed["run_id"] != cfg.run_id:
        changes.append(f"run {pushed['run_id']} was pushed, run {cfg.run_id} is asked for")
    elif pushed["config_hash"] != cfg.config_hash():
        changes.append(f"config hash {pushed['config_hash']} was pushed, {cfg.config_hash()} now")
    if pushed.get("run_digest"):
        now = checkpoints_digest(cfg.run_dir)
        if now and now != pushed["run_digest"]:
            changes.append(f"the checkpoints in {cfg.run_dir} changed since the push (retrained)")
    if pushed.get("settings") is not None:
        now = inference_settings(cfg)
        changed = sorted(k for k in set(now) | set(pushed["settings"]) if now.get(k) != pushed["settings"].get(k))
        if changed:
            changes.append("inference settings changed since the push: " + ", ".join(
                f"{k} {pushed['settings'].get(k)!r} -> {now.get(k)!r}" for k in changed))
    return changes


def _weights_dataset(folder: Path, weights: Path, ref: str) -> Path:
    if not weights.expanduser().is_file():
        raise PodiumError(f"Weights file {weights} does not exist.", expected="a local weights file",
                          received=str(weights), fix="fix weights_file in the kernel spec")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / weights.name
    if not target.exists() or file_sha256(target) != file_sha256(weights.expanduser()):
        target.unlink(missing_ok=True)
        try:
            os.link(weights.expanduser(), target)
        except OSError:
            shutil.copyfile(weights.expanduser(), target)
    slug = ref.split("/")[1]
    write_json(folder / "dataset-metadata.json", {"id": ref, "title": slug.replace("-", " ")[:50],
                                                  "licenses": [{"name": "CC0-1.0"}]})
    return folder


def podium_source_zip() -> bytes:
    """src/podium as a deterministic zip: *.py and the competition specs; no caches, no demo archives."""
    package = SPEC_DIR.parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(package.rglob("*")):
            relative = path.relative_to(package.parent)
            if "__pycache__" in relative.parts or not path.is_file():
                continue
            if path.suffix == ".py" or (path.suffix == ".yaml" and path.parent.name == "competitions"):
                info = zipfile.ZipInfo(str(relative), date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, path.read_bytes())
    return buffer.getvalue()


def _inlined(cfg: ExperimentConfig) -> dict[str, str]:
    """What both jobs read about the competition: its slug, and its spec when it is not a built-in one."""
    competition = load_competition(cfg.competition)
    builtin = (SPEC_DIR / f"{cfg.competition}.yaml").is_file()
    spec_yaml = "" if builtin else yaml.safe_dump(
        {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(competition).items()})
    return {"competition": competition.slug, "spec_yaml": spec_yaml}


def kernel_budget(cfg: ExperimentConfig, spec: KernelSpec) -> float:
    """Seconds a training kernel's run may take when its config sets no time_budget: the session (the spec's
    timeout_seconds, else Kaggle's default for the accelerator) less a margin (time_budget.kernel_budget_seconds);
    0 when the config sets its own. Passed as a session limit, not written into the config: the run id stays."""
    return 0.0 if cfg.time_budget else time_budget.kernel_budget_seconds(spec.timeout_seconds, spec.accelerator)


def kernel_script(cfg: ExperimentConfig, token: str, weights_input: str = "", budget_seconds: float = 0.0) -> str:
    """The training kernel (scripts/training_kernel.py's job) with this config, token, weights and session
    budget (kernel_budget; 0: none beyond the config's) filled in."""
    settings = {"config": cfg.to_dict(), **_inlined(cfg), "weights_file": weights_input,
                "session_budget_seconds": budget_seconds}
    return fill_script("training_kernel", f"config '{cfg.name}', local run {cfg.run_id}", token, settings)


def inference_script(cfg: ExperimentConfig, token: str) -> str:
    """The offline script: nothing about the test set is in it; the inference-time settings of cfg are."""
    settings = {"run_id": cfg.run_id, **_inlined(cfg),
                "inference": inference_settings(cfg)}
    return fill_script("inference_kernel", f"config '{cfg.name}', run {cfg.run_id}", token, settings)


def fill_script(job: str, about: str, token: str, settings: dict[str, Any]) -> str:
    """scripts/kernel.py with only its settings block filled: the token, which job module of
    podium.kaggle.scripts it runs with which settings (JSON: the job's READS), and podium's code (base64 of
    podium_source_zip). Never a format over code: every other line is the file as the tests import it."""
    head, _, tail = split_settings_block((SCRIPTS / KERNEL_SCRIPT).read_text(encoding="utf-8"))
    code = base64.b64encode(podium_source_zip()).decode()
    filled = "\n".join([
        f"# {about}; rendered by `make kernel`, do not edit", f'RUN_TOKEN = "{token}"',
        'SETTINGS = json.loads(r"""', json.dumps({"job": job, **settings}, indent=1), '""")',
        'PODIUM_SOURCE = """', *(code[i:i + 100] for i in range(0, len(code), 100)), '"""', ""])
    return head + filled + tail


def split_settings_block(text: str) -> tuple[str, str, str]:
    """(up to and with the START line, the block's lines, from the END line on) of a kernel script."""
    start = text.index(SETTINGS_START)
    start = text.index("\n", start) + 1
    end = text.index(SETTINGS_END, start)
    return text[:start], text[start:end], text[end:]
