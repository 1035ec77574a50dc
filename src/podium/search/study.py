"""The sweep: a search-space YAML becomes an optuna study whose every trial is one configuration,
trained over N seeds with the one training entry, `train_and_evaluate`.

Why a trial is a configuration and the seeds run inside it (not one trial per seed):
- the value the sampler optimises is the seed mean, so TPE does not chase a lucky seed;
- random/TPE draw new parameters per trial; seeds as trials would need the same draw repeated;
- the pruner decides about a configuration: a hopeless one is stopped on its first seed, before
  its other seeds cost anything (later seeds of a survivor run to the end, so means stay comparable);
- one configuration is one study row is one table row.
Finished seeds are not lost when a trial is interrupted: each seed has its own run folder (the seed is
in the config hash), so a re-run trial reads finished seeds back and resumes the unfinished one.

Resuming: trials that finished (complete, pruned, or failed with an error of their own) are never
redone; trials cut short by Ctrl-C/SIGTERM (or left stale by a killed worker, via optuna's heartbeat)
are queued again with the same parameters. The grid is run by queueing its missing points in the
order written, which makes that bookkeeping the same for every sampler.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import yaml

from podium.tasks.base import Task
from podium.config import ExperimentConfig, load_config, parse_overrides
from podium.data.dataset import load_labeled_data
from podium.errors import PodiumError
from podium.paths import check_name
from podium.extras import require
from podium.io import read_yaml_mapping, write_yaml
from podium.scoring.registry import Metric
from podium.training.augment import augmentation_cost
from podium.runners.train import train_and_evaluate

optuna = require("optuna")  # only the search needs it: podium[search]

SAMPLERS = ("grid", "random", "tpe")
DEFAULT_SEEDS = 2
DEFAULT_VAL_SPLIT = 0.3  # search on a large validation share; train the chosen config on (almost) all
HEARTBEAT_SECONDS, GRACE_SECONDS = 60, 180  # a worker silent for 3 minutes is presumed dead
AUG_COST_BATCH = 64
SPACE_KEYS = {"base", "name", "seeds", "sampler", "trials", "sampler_seed", "storage", "overrides", "params",
              "pruner"}

# trial user attributes (the study is the record; search/results.py reads these)
ATTR_SEEDS = "seeds"  # list of per-seed results
ATTR_ERROR = "error"  # "<ExceptionType>: message" of a failed trial
ATTR_INTERRUPTED = "interrupted"
ATTR_AUG_COST = "aug_images_per_s"
ATTR_CONFIG = "config"  # values set on the base config (params with bundles flattened)


# ---------------------------------------------------------------------------------- the space


@dataclass(frozen=True)
class Param:
    """One searched dimension. Categorical choices may be lists or mappings (a 'bundle' of config keys,
    e.g. a schedule with its own parameters); optuna stores them under a readable label."""

    name: str
    kind: str  # categorical | float | int
    choices: tuple = ()  # decoded values (categorical)
    labels: tuple = ()  # what optuna stores, str/int/float/bool (categorical)
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None

    @property
    def is_bundle(self) -> bool:
        return self.kind == "categorical" and all(isinstance(c, dict) for c in self.choices)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            label = trial.suggest_categorical(self.name, list(self.labels))
            return self.decode(label)
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def decode(self, stored: Any) -> Any:
        if self.kind != "categorical":
            return stored
        return self.choices[self.labels.index(stored)]

    def grid_labels(self) -> list:
        """What a grid walks through: the choices, or a range with a step."""
        if self.kind == "categorical":
            return list(self.labels)
        if self.step is None:
            raise PodiumError(f"Search parameter '{self.name}' is a continuous range; a grid cannot walk it.",
                              expected="a list of choices, or low/high with step", received="no step",
                              fix=f"give '{self.name}' a step, list its values, or use sampler: random or tpe")
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        values = [self.low + i * self.step for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else [round(v, 12) for v in values]

    def describe(self) -> Any:
        if self.kind == "categorical":
            return list(self.labels)
        return {"type": self.kind, "low": self.low, "high": self.high, "log": self.log, "step": self.step}


@dataclass
class SearchSpace:
    """A parsed space YAML: base config, search-wide overrides, the searched params, how to sample."""

    path: Path
    name: str
    base: Path | None
    overrides: dict[str, Any]
    params: list[Param]
    seeds: list[int]
    sampler: str = "tpe"
    trials: int = 20
    sampler_seed: int = 0
    storage: str | None = None
    pruner: dict[str, Any] = field(default_factory=dict)

    def base_config(self) -> ExperimentConfig:
        """The base experiment with the search-wide overrides, before any searched value."""
        return load_config(self.base, self.overrides)

    @property
    def study_dir(self) -> Path:
        return Path(self.base_config().runs_dir) / f"search-{self.name}"

    @property
    def metric(self) -> Metric:
        """What every trial is scored by (the base config's metric: a space cannot search it, so all trials
        of a study are scored alike) and which way optuna optimises."""
        return self.base_config().resolved_metric

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.study_dir / 'study.db').resolve()}"

    def grid(self) -> list[dict[str, Any]]:
        """Every grid point as {param: stored label}, in the order the YAML lists them."""
        names = [p.name for p in self.params]
        return [dict(zip(names, combo)) for combo in itertools.product(*(p.grid_labels() for p in self.params))]

    def fingerprint(self) -> dict[str, Any]:
        """What must not change under a running study (trial count, sampler and storage may)."""
        return {"base": str(self.base) if self.base else None, "overrides": self.overrides,
                "params": {p.name: p.describe() for p in self.params}, "seeds": self.seeds}


def load_space(path: str | Path, *, base: str | Path | None = None,
               overrides: list[str] | dict[str, Any] | None = None) -> SearchSpace:
    """Parse and check a space YAML. `base` replaces the YAML's base; `overrides` join its overrides.

    Every searched value is checked now through load_config, so a typo fails before any training.
    """
    path = Path(path)
    raw = _read_mapping(path)
    unknown = sorted(set(raw) - SPACE_KEYS)
    if unknown:
        raise PodiumError(f"Unknown key '{unknown[0]}' in search space {path}.",
                          expected=f"one of: {', '.join(sorted(SPACE_KEYS))}", received=repr(unknown[0]),
                          fix="put experiment keys under 'overrides:' (fixed) or 'params:' (searched)")
    base_path = Path(base) if base else _base_path(raw.get("base"), path)
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides or [])
    search_overrides = {"val_split": DEFAULT_VAL_SPLIT, "folds": [0], **(raw.get("overrides") or {}), **extra}
    params = [_parse_param(name, spec) for name, spec in (raw.get("params") or {}).items()]
    if not params:
        raise PodiumError(f"Search space {path} has no params.", expected="params: {key: [choices], ...}",
                          received="none", fix="list at least one config key under params:")
    sampler = str(raw.get("sampler", "tpe")).lower()
    if sampler not in SAMPLERS:
        raise PodiumError("Unknown sampler in the search space.", expected=f"one of: {', '.join(SAMPLERS)}",
                          received=repr(sampler), fix="sampler: grid, random or tpe")
    name = check_name(str(raw.get("name") or path.stem), f"name (search space {path})", "lr-dropout")
    space = SearchSpace(path=path, name=name, base=base_path,
                        overrides=search_overrides, params=params, seeds=_parse_seeds(raw.get("seeds")),
                        sampler=sampler, trials=int(raw.get("trials", 20)),
                        sampler_seed=int(raw.get("sampler_seed", 0)), storage=raw.get("storage"),
                        pruner=dict(raw.get("pruner") or {}))
    _check_space(space)
    return space


def trial_values(space: SearchSpace, stored: dict[str, Any]) -> dict[str, Any]:
    """The config keys a trial sets, from optuna's stored params (bundles flattened, in YAML order)."""
    values: dict[str, Any] = {}
    for param in space.params:
        if param.name not in stored:
            continue
        value = param.decode(stored[param.name])
        if param.is_bundle:
            values.update(value)
        else:
            values[param.name] = value
    searched = set(values)
    if "backbone" in searched and "image_size" not in searched and "image_size" not in space.overrides:
        values["image_size"] = 0  # each backbone at its own default size, not the base's
    return values


def resolve_config(space: SearchSpace, values: dict[str, Any], seed: int,
                   runs_dir: Path | None = None) -> ExperimentConfig:
    """base < search-wide overrides < the trial's values < this seed (and where its runs go)."""
    merged = {**space.overrides, **values, "seed": seed}
    if runs_dir is not None:
        merged["runs_dir"] = str(runs_dir)
    return load_config(space.base, merged)


def _read_mapping(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, "Search space", "SPACE=configs/search/demo-space.yaml",
                             "see docs/search.md for the format")


def _base_path(value: Any, space_path: Path) -> Path | None:
    """A relative base is tried from the working directory (how make runs) and then beside the space."""
    if not value:
        return None
    candidate = Path(value)
    if candidate.is_absolute() or candidate.is_file():
        return candidate
    beside = space_path.parent / candidate
    return beside if beside.is_file() else candidate


def _parse_seeds(value: Any) -> list[int]:
    if value is None:
        return list(range(DEFAULT_SEEDS))
    if isinstance(value, bool) or not isinstance(value, (int, list)) or (isinstance(value, int) and value < 1):
        raise PodiumError("'seeds' in the search space is not a count or a list.", expected="seeds: 2, or [0, 1, 2]",
                          received=repr(value), fix="give how many seeds each configuration runs")
    return list(range(value)) if isinstance(value, int) else [int(s) for s in value]


def _parse_param(name: str, spec: Any) -> Param:
    if isinstance(spec, list):
        return _categorical(name, spec)
    if isinstance(spec, dict) and "choices" in spec:
        return _categorical(name, list(spec["choices"]))
    if isinstance(spec, dict) and "low" in spec and "high" in spec:
        kind = str(spec.get("type", "float"))
        if kind not in ("float", "int"):
            raise PodiumError(f"Search parameter '{name}' has an unknown type.", expected="float or int",
                              received=repr(kind), fix="type: float (or int), low:, high:, log: true|false")
        low, high = float(spec["low"]), float(spec["high"])
        if not low < high or (spec.get("log") and low <= 0):
            raise PodiumError(f"Search parameter '{name}' has an empty or invalid range.",
                              expected="low < high (and low > 0 with log: true)", received=f"[{low}, {high}]",
                              fix="fix low/high")
        step = spec.get("step")
        return Param(name=name, kind=kind, low=low, high=high, log=bool(spec.get("log", False)),
                     step=None if step is None else float(step))
    raise PodiumError(f"Search parameter '{name}' is neither a list of choices nor a range.",
                      expected="[a, b, ...] or {type: float, low: .., high: .., log: true}",
                      received=repr(spec), fix="see docs/search.md for the params format")


def _categorical(name: str, choices: list) -> Param:
    if not choices:
        raise PodiumError(f"Search parameter '{name}' has no choices.", expected="a non-empty list",
                          received="[]", fix=f"list at least one value for {name}")
    labels = tuple(_label(choice) for choice in choices)
    if len(set(labels)) != len(labels):
        raise PodiumError(f"Search parameter '{name}' lists a choice twice.", expected="distinct choices",
                          received=str(list(labels)), fix="remove the duplicate")
    return Param(name=name, kind="categorical", choices=tuple(choices), labels=labels)


def _label(value: Any) -> Any:
    """optuna stores str/int/float/bool/None only; lists and bundles get their YAML flow form."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=10_000).strip()


def _check_space(space: SearchSpace) -> None:
    """Every value of every param must make a valid config; checked by the config itself."""
    if "seed" in {p.name for p in space.params} or "seed" in space.overrides:
        raise PodiumError("'seed' cannot be searched or fixed in a search space.", expected="seeds: N",
                          received="seed", fix="use 'seeds:' to repeat every configuration over seeds")
    space.base_config()  # unknown override keys fail here with the config's own message
    for param in space.params:
        if param.kind != "categorical":
            for value in (param.low, param.high):
                resolve_config(space, {param.name: int(value) if param.kind == "int" else value}, 0)
            continue
        for choice in param.choices:
            if isinstance(choice, dict):
                resolve_config(space, dict(choice), 0)
            else:
                resolve_config(space, {param.name: choice}, 0)
    if space.sampler == "grid":
        space.grid()  # a continuous range fails here, before the study exists
    elif space.trials < 1:
        raise PodiumError("'trials' must be at least 1.", expected="trials: 8, say", received=str(space.trials),
                          fix="set how many configurations random/TPE should try")


# ---------------------------------------------------------------------------------- the run


@dataclass
class SearchOutcome:
    study_dir: Path
    study_name: str
    storage: str
    ran: int  # trials run by this call
    complete: int
    pruned: int
    failed: int
    seconds: float


CallbackFactory = Callable[[optuna.Trial, ExperimentConfig], keras.callbacks.Callback]


def run_search(space: SearchSpace, task: Task, *, storage: str | None = None, max_trials: int | None = None,
               callback_factories: Sequence[CallbackFactory] = (),
               on_trial_end: Callable[[optuna.trial.FrozenTrial], None] | None = None) -> SearchOutcome:
    """Run (or resume) the study until the plan is done: the whole grid, or `trials` finished trials.

    max_trials caps this call (a Kaggle session's share, say). callback_factories make extra Keras
    callbacks, built fresh for every seed of every trial. KeyboardInterrupt propagates after the
    interrupted trial is marked, so the next call re-runs it.
    """
    started = time.perf_counter()
    study = open_study(space, storage)
    plan = _queue_pending(study, space)
    if max_trials is not None:
        plan = min(plan, max_trials)
    ran = 0
    if plan > 0:
        objective = _Objective(space, task, callback_factories)
        callbacks = [lambda _study, trial: on_trial_end(trial)] if on_trial_end else None
        before = _finished(study)
        study.optimize(objective, n_trials=plan, catch=(Exception,), callbacks=callbacks)
        ran = _finished(study) - before
    counts = _state_counts(study)
    return SearchOutcome(study_dir=space.study_dir, study_name=space.name, storage=storage or space.storage_url,
                         ran=ran, complete=counts[optuna.trial.TrialState.COMPLETE],
                         pruned=counts[optuna.trial.TrialState.PRUNED], failed=counts[optuna.trial.TrialState.FAIL],
                         seconds=time.perf_counter() - started)


def open_study(space: SearchSpace, storage: str | None = None, *, create: bool = True) -> optuna.Study:
    """The study of this space: created with its fingerprint, or loaded and checked against it."""
    url = storage or space.storage_url
    if url.startswith("sqlite:///"):
        space.study_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        backend = optuna.storages.RDBStorage(
            url, heartbeat_interval=HEARTBEAT_SECONDS, grace_period=GRACE_SECONDS,
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None)
    existing = {s.study_name for s in optuna.get_all_study_summaries(backend, include_best_trial=False)}
    if not create and space.name not in existing:
        raise PodiumError(f"No study '{space.name}' in {url}.", expected="a search that has run",
                          received="no such study", fix="run make search SPACE=... first")
    previous = len(_all_trials(backend, space.name)) if space.name in existing else 0
    metric = space.metric
    direction = "maximize" if metric.direction == "max" else "minimize"
    study = optuna.create_study(storage=backend, study_name=space.name, direction=direction,
                                load_if_exists=True, sampler=_sampler(space, previous), pruner=_pruner(space))
    scored = study.user_attrs.get("metric")  # None: new, or made before its metric was recorded
    if (scored is not None and scored != metric.label) or study.direction.name.lower() != direction:
        raise PodiumError(f"Study '{space.name}' was scored by {scored or 'its task score'} "
                          f"({study.direction.name.lower()}); its base config is scored by {metric.label}.",
                          expected=f"the study's metric", received=f"metric {metric.label} ({direction})",
                          fix="trials scored by different metrics are never ranked together: give this search "
                              "its own name: (a new study), or set metric back")
    if scored is None:
        study.set_user_attr("metric", metric.label)
        study.set_user_attr("direction", metric.direction)
    fingerprint = json.loads(json.dumps(space.fingerprint(), default=str))
    stored = study.user_attrs.get("space")
    if stored is None:
        study.set_user_attr("space", fingerprint)
        study.set_user_attr("space_yaml", space.path.read_text(encoding="utf-8"))
    elif stored != fingerprint:
        raise PodiumError(f"The search space changed since study '{space.name}' started.",
                          expected=json.dumps(stored, sort_keys=True), received=json.dumps(fingerprint, sort_keys=True),
                          fix="restore the space, or give the changed space its own name: (a new study)")
    if url.startswith("sqlite:///"):
        write_yaml(space.study_dir / "space.yaml", _space_record(space))
    return study


def _all_trials(backend, study_name: str) -> list:
    study_id = backend.get_study_id_from_name(study_name)
    return backend.get_all_trials(study_id, deepcopy=False)


def _space_record(space: SearchSpace) -> dict[str, Any]:
    """The space as run, base made absolute, so `make results` works from the study folder alone."""
    raw = _read_mapping(space.path)
    raw["base"] = str(space.base.resolve()) if space.base else None
    raw["name"] = space.name
    raw["overrides"] = space.overrides
    return raw


def _sampler(space: SearchSpace, previous_trials: int) -> optuna.samplers.BaseSampler:
    """Seeded for reproducibility, offset by the trials already run so a resumed random/TPE search
    does not redraw the parameters of the run it resumes. The grid is queued, so any sampler serves it."""
    seed = space.sampler_seed + previous_trials
    if space.sampler == "tpe":
        startup = max(2, min(10, space.trials // 3))
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)
    return optuna.samplers.RandomSampler(seed=seed)


def _pruner(space: SearchSpace) -> optuna.pruners.BasePruner:
    """Default: prune a configuration whose first seed is in the bottom quarter of the finished ones
    at the same epoch, after a warm-up. Gentler than the median rule, which stops half of a grid on
    one noisy seed; `type: median` is there for large random/TPE searches."""
    kind = str(space.pruner.get("type", "percentile"))
    startup = int(space.pruner.get("startup_trials", 2))
    warmup = int(space.pruner.get("warmup_epochs", 1))
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup, n_warmup_steps=warmup)
    if kind == "percentile":
        return optuna.pruners.PercentilePruner(float(space.pruner.get("percentile", 25.0)),
                                               n_startup_trials=startup, n_warmup_steps=warmup)
    raise PodiumError("Unknown pruner in the search space.", expected="percentile, median or none",
                      received=repr(kind), fix="pruner: {type: percentile, percentile: 25, startup_trials: 2, "
                      "warmup_epochs: 1}")


def _queue_pending(study: optuna.Study, space: SearchSpace) -> int:
    """Queue what is owed (missing grid points; interrupted trials again) and say how many trials to run."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    settled = {_key(t.params) for t in trials if _is_settled(t)}
    owed: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if space.sampler == "grid":
        owed = [(point, {}) for point in space.grid()]
    else:
        owed = [(t.params, {"retry_of": t.number}) for t in trials if _was_interrupted(t)]
    for params, attrs in owed:
        if _key(params) not in settled:
            settled.add(_key(params))
            study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)
    waiting = sum(t.state == optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))
    if space.sampler == "grid":
        return waiting
    finished = sum(_is_settled(t) and t.state != optuna.trial.TrialState.WAITING
                   and t.state != optuna.trial.TrialState.RUNNING for t in trials)
    return max(space.trials - finished, 0)


def _is_settled(trial: optuna.trial.FrozenTrial) -> bool:
    """Done or owned by someone: never queue it again."""
    if trial.state == optuna.trial.TrialState.FAIL:
        return not _was_interrupted(trial)
    return True


def _was_interrupted(trial: optuna.trial.FrozenTrial) -> bool:
    """Failed because the process stopped (Ctrl-C, SIGTERM, a stale heartbeat), not because of itself."""
    return trial.state == optuna.trial.TrialState.FAIL and (
        bool(trial.user_attrs.get(ATTR_INTERRUPTED)) or ATTR_ERROR not in trial.user_attrs)


def _key(params: dict[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


def _finished(study: optuna.Study) -> int:
    return sum(t.state.is_finished() for t in study.get_trials(deepcopy=False))


def _state_counts(study: optuna.Study) -> dict:
    counts = {state: 0 for state in optuna.trial.TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state] += 1
    return counts


class _Objective:
    """One trial: every seed of one configuration through train_and_evaluate; value = mean val_score."""

    def __init__(self, space: SearchSpace, task: Task, callback_factories: Sequence[CallbackFactory]):
        self.task = task  # the base config's: a search never searches the task
        self.space = space
        self.callback_factories = list(callback_factories)
        self.runs_dir = space.study_dir / "runs"
        self._data: tuple[tuple, Any] | None = None  # the last LabeledData: trials of one size share it
        self._aug_costs: dict[tuple, float | None] = {}

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._run(trial)
        except optuna.TrialPruned:
            raise
        except KeyboardInterrupt:
            trial.set_user_attr(ATTR_INTERRUPTED, True)
            raise
        except Exception as exc:  # noqa: BLE001 - recorded on the trial; optimize(catch=) goes on
            trial.set_user_attr(ATTR_ERROR, f"{type(exc).__name__}: {exc}"[:1000])
            raise

    def _run(self, trial: optuna.Trial) -> float:
        for param in self.space.params:
            param.suggest(trial)
        values = trial_values(self.space, trial.params)
        trial.set_user_attr(ATTR_CONFIG, json.loads(json.dumps(values, default=str)))
        seeds: list[dict[str, Any]] = []
        for position, seed in enumerate(self.space.seeds):
            cfg = resolve_config(self.space, values, seed, runs_dir=self.runs_dir)
            if cfg.resolved_metric.label != self.space.metric.label:
                raise PodiumError(f"Trial {trial.number} would be scored by {cfg.resolved_metric.label}, the study "
                                  f"by {self.space.metric.label}.", expected="one metric for every trial",
                                  received=f"params {values}",
                                  fix="do not search metric, competition or task: run a search per metric")
            data = self._labeled_data(cfg)
            if position == 0:
                trial.set_user_attr(ATTR_AUG_COST, self._aug_cost(cfg, data))
            fold_results = []
            for fold in cfg.folds:
                callbacks = [EpochReporter(trial, prune=position == 0, logged=cfg.metric_logged)]
                callbacks += [make(trial, cfg) for make in self.callback_factories]
                fold_results.append(train_and_evaluate(cfg, self.task, fold, data=data, extra_callbacks=callbacks))
            seeds.append(_seed_record(seed, cfg, fold_results))
            trial.set_user_attr(ATTR_SEEDS, seeds)  # kept even if a later seed is interrupted
        return sum(s["val_score"] for s in seeds) / len(seeds)

    def _labeled_data(self, cfg: ExperimentConfig):
        key = (cfg.data_dir, cfg.competition, cfg.resolved_image_size, cfg.n_folds, cfg.val_split, cfg.split_seed)
        if self._data is None or self._data[0] != key:
            self._data = (key, load_labeled_data(cfg, self.task, progress=False))
        return self._data[1]

    def _aug_cost(self, cfg: ExperimentConfig, data) -> float | None:
        """Images/s of the config's augmentation (batch chain, then CPU recipe); None when it has none."""
        key = (tuple(cfg.augment), cfg.cpu_augment, cfg.resolved_image_size)
        if key not in self._aug_costs:
            sample = data.images[:AUG_COST_BATCH]
            rates = [augmentation_cost(cfg.augment, sample, seed=cfg.seed) if cfg.augment else math.inf,
                     augmentation_cost(cfg.cpu_augment, sample, seed=cfg.seed)]
            seconds_per_image = sum(1.0 / r for r in rates if math.isfinite(r))
            self._aug_costs[key] = 1.0 / seconds_per_image if seconds_per_image else None
        return self._aug_costs[key]


def _seed_record(seed: int, cfg: ExperimentConfig, folds: list) -> dict[str, Any]:
    mean = lambda attr: sum(getattr(r, attr) for r in folds) / len(folds)  # noqa: E731
    return {"seed": seed, "run_dir": str(cfg.run_dir), "val_score": mean("val_score"),
            "val_score_tta": mean("val_score_tta"), "best_epoch": mean("best_epoch"),
            "epochs_run": mean("epochs_run"), "seconds_per_epoch": mean("seconds_per_epoch"),
            "seconds": sum(r.seconds for r in folds)}


class EpochReporter(keras.callbacks.Callback):
    """Reports the run's metric per epoch to the trial and prunes (first seed only); a NaN loss
    fails the trial.

    Reports the metric where the logs hold it (`cfg.metric_logged`: val_accuracy, val_f1, val_dice,
    val_box_iou natively, else val_<metric> from podium.training.validation): what tracks val_score, which
    the study optimises in the metric's direction, whatever the config monitors.
    """

    def __init__(self, trial: optuna.Trial, prune: bool, logged: str):
        super().__init__()
        self.trial, self.prune, self.metric = trial, prune, logged

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise PodiumError(f"The training loss became {loss} in epoch {epoch + 1}.", expected="a finite loss",
                              received=str(loss), fix="lower lr (try make lr-find), or add warmup")
        if not self.prune or self.metric not in logs:
            return
        self.trial.report(float(logs[self.metric]), step=epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"{self.metric} {logs[self.metric]:.4f} at epoch {epoch + 1} "
                                     "is worse than the median of earlier trials")

