"""The metric registry: one entry per Kaggle metric, with its parameters, its direction, what it reads and
Kaggle's own definition, so the metric a competition is scored by can decide every stage.

A metric reads one *form* of prediction (`reads`), the same form its competition's submission holds:

| reads | truth | predicted |
|---|---|---|
| labels | (n,) int class indices (or ordinal grades) | (n,) int |
| probability | (n,) 0/1, 1 = the positive class | (n,) float P(positive) |
| probabilities | (n,) int class indices, or (n, C) 0/1 columns | (n, C) float, one column per class |
| ranking | (n,) int class index, or a list of index lists | (n, k) int class indices, best first |
| label_sets | (n, C) 0/1 | (n, C) 0/1 |
| numbers | (n,) float | (n,) float |
| masks | (n, H, W[, C]) 0/1 | (n, H, W[, C]) probabilities (C > 1: mean_dice_pairs) |
| boxes | (n, 4) xyxy fractions | (n, 4) xyxy fractions |
| detections | per image (k, 4) xyxy, or (k, 5) class first | per image (m, 5) score then xyxy, or (m, 6) class first |

(detections: lists with one entry per image, podium.scoring.detection)

`resolve_metric("map_at_k")` is refused (k is required); `resolve_metric({"name": "map_at_k", "k": 5})` and
`resolve_metric("map_at_k(k=5)")` are the same metric. Edge cases are documented values or a PodiumError,
never a silent NaN (docs/metrics.md).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping


from podium.errors import PodiumError
from podium.task_keys import task_keys
from podium.scoring.detection import coco_map, f2_iou, map_at_iou, wheat_map
from podium.scoring.metrics import accuracy, macro_f1  # one definition each, with the index checks
from podium.scoring.kaggle_metrics import (LOG_LOSS_EPS, ArrayLike, airbus_f2, average_precision_at_k, dice, fbeta,  # noqa: F401
                                           log_loss, mae, map_at_k, mean_columnwise_auc, mean_dice_pairs, mean_iou,
                                           micro_f1, qwk, rmse, roc_auc)

Direction = Literal["max", "min"]
Reads = Literal["labels", "probability", "probabilities", "ranking", "label_sets", "numbers", "masks", "boxes",
                "detections"]
READS: tuple[str, ...] = ("labels", "probability", "probabilities", "ranking", "label_sets", "numbers", "masks",
                          "boxes", "detections")


@dataclass(frozen=True)
class Param:
    """One parameter of a metric: its type, default (None: required) and the values it accepts."""

    name: str
    kind: type  # int, float or str
    default: Any = None
    low: float | None = None  # value > low (exclusive) unless low_inclusive
    low_inclusive: bool = True
    choices: tuple[str, ...] = ()
    text: str = ""  # what it means, for docs and errors

    def check(self, metric: str, value: Any) -> Any:
        if self.kind is str:
            if value not in self.choices:
                raise PodiumError(f"Metric {metric}: parameter {self.name} has an unknown value.",
                                  expected=f"one of: {', '.join(self.choices)}", received=repr(value),
                                  fix=f"set {self.name} to one of the listed values")
            return value
        ok_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        if self.kind is int:
            ok_type = ok_type and float(value).is_integer()
        if not ok_type or not math.isfinite(float(value)):
            raise PodiumError(f"Metric {metric}: parameter {self.name} has the wrong type.",
                              expected=f"a{'n integer' if self.kind is int else ' number'}", received=repr(value),
                              fix=f"e.g. {{name: {metric}, {self.name}: {self.default or 1}}}")
        value = self.kind(value)
        if self.low is not None and (value < self.low or (value == self.low and not self.low_inclusive)):
            bound = ">=" if self.low_inclusive else ">"
            raise PodiumError(f"Metric {metric}: parameter {self.name} is out of range.",
                              expected=f"{self.name} {bound} {self.low:g}", received=f"{self.name}={value}",
                              fix=f"set {self.name} {bound} {self.low:g}")
        return value


@dataclass(frozen=True)
class MetricDef:
    """A registry entry: what a metric is, before its parameters are given."""

    name: str
    direction: Direction
    reads: Reads
    compute: Callable[..., float]  # compute(truth, predicted, **params) -> float
    forms: tuple[str, ...]  # submission_format values whose file this metric can score
    tasks: tuple[str, ...]  # tasks whose outputs can be turned into what it reads
    params: tuple[Param, ...] = ()
    proxy: str = ""  # a smooth metric a blend fits in its place (a step function cannot be fitted); "" = itself
    definition: str = ""  # Kaggle's definition, for docs/metrics.md
    competitions: str = ""  # real competitions scored by it

    def scores(self, task: str) -> bool:
        """It can score `task`: one of its tasks, or a registered task whose outputs are one of theirs
        (TaskKeys.outputs_like)."""
        return task in self.tasks or task_keys(task).outputs_like in self.tasks


@dataclass(frozen=True)
class Metric:
    """A resolved metric: a registry entry with its parameters, callable on (truth, predicted)."""

    spec: MetricDef
    params: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def direction(self) -> Direction:
        return self.spec.direction

    @property
    def mode(self) -> Direction:
        """Keras' word for the direction (ModelCheckpoint, EarlyStopping, ReduceLROnPlateau)."""
        return self.spec.direction

    @property
    def reads(self) -> str:
        return self.spec.reads

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def label(self) -> str:
        """The name with its parameters, as a reader and `resolve_metric` spell it: `map_at_k(k=5)`."""
        if not self.params:
            return self.name
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in self.params)})"

    @property
    def logged(self) -> str:
        """The key of the per-epoch validation score in Keras' logs and history.csv."""
        return f"val_{self.name}"

    def to_config(self) -> str | dict[str, Any]:
        """What a spec or a record writes: the name, or a mapping with the parameters."""
        return self.name if not self.params else {"name": self.name, **self.kwargs}

    def __call__(self, truth: ArrayLike, predicted: ArrayLike) -> float:
        value = float(self.spec.compute(truth, predicted, **self.kwargs))
        if not math.isfinite(value):  # every compute raises on undefined cases; this is the last guard
            raise PodiumError(f"Metric {self.label} is undefined on these predictions.",
                              expected="a finite score", received=repr(value),
                              fix="check the predictions for NaN or infinite values")
        return value

    def better(self, a: float, b: float) -> bool:
        """a is strictly better than b."""
        return a > b if self.direction == "max" else a < b

    @property
    def worst(self) -> float:
        return -math.inf if self.direction == "max" else math.inf

    def best_of(self, values) -> float:
        return float(max(values) if self.direction == "max" else min(values))

    @property
    def proxy(self) -> "Metric":
        """What a blend fits in this metric's place (itself unless it is a step function of the weights)."""
        return resolve_metric(self.spec.proxy) if self.spec.proxy else self


# ---------------------------------------------------------------------------------------- the registry

_CLASS = ("classification",)
K = Param("k", int, None, low=1, text="how many ranked labels a row holds (MAP@5: k=5)")
BETA = Param("beta", float, 1.0, low=0, low_inclusive=False, text="recall weighs beta times precision (F2: 2)")
AVERAGE = Param("average", str, "samples", choices=("samples", "micro", "macro"),
                text="samples: per image then mean (Planet); micro: decisions pooled; macro: per class then mean")
IOU = Param("iou", float, 0.5, low=0, low_inclusive=False, text="the IoU a predicted box needs with a true one "
                                                                  "(VinBigData: 0.4; at most 1)")
INTERPOLATION = Param("interpolation", str, "coco", choices=("coco", "voc"),
                      text="coco: AP read at 101 recall points; voc: area under the whole curve (PASCAL VOC 2010)")
# the task whose object reads these is still to come (issue 23): no config can name task detection yet, and
# MetricDef.scores is only asked about registered tasks, so naming it here changes nothing for the others
_DETECTION = ("detection",)

METRICS: dict[str, MetricDef] = {m.name: m for m in (
    MetricDef("accuracy", "max", "labels", accuracy, ("label",), ("classification", "localization"),
              proxy="log_loss", definition="share of rows whose label is the true one",
              competitions="Digit Recognizer, Fashion-MNIST, Kannada-MNIST, Dogs vs. Cats (2013)"),
    MetricDef("log_loss", "min", "probabilities", log_loss, ("probability", "probabilities"), _CLASS,
              definition="-mean log P(true class); P clipped to [1e-15, 1-1e-15], each row divided by its sum; "
                         "binary: P(positive) of one column",
              competitions="Dogs vs. Cats Redux (binary), Leaf Classification (99 classes), "
                           "State Farm Distracted Driver Detection"),
    MetricDef("roc_auc", "max", "probability", roc_auc, ("probability",), _CLASS,
              definition="area under the ROC curve of P(positive class); undefined on one class (an error)",
              competitions="SIIM-ISIC Melanoma Classification, Histopathologic Cancer Detection"),
    MetricDef("mean_columnwise_auc", "max", "probabilities", mean_columnwise_auc, ("probabilities",),
              ("classification", "multilabel"),
              definition="mean over class columns of each column's ROC AUC; a column with one class in the "
                         "truth is left out", competitions="Plant Pathology 2020, RANZCR CLiP"),
    MetricDef("qwk", "max", "labels", qwk, ("label", "number"), ("classification", "regression"),
              proxy="rmse", definition="Cohen's kappa with quadratic weights over integer grades",
              competitions="APTOS 2019 Blindness Detection, PANDA, Diabetic Retinopathy"),
    MetricDef("macro_f1", "max", "labels", macro_f1, ("label",), _CLASS, proxy="log_loss",
              definition="unweighted mean of each class's F1", competitions="many imbalanced classification "
                                                                             "competitions"),
    MetricDef("fbeta", "max", "label_sets", fbeta, ("label",), ("multilabel",), (BETA, AVERAGE),
              proxy="log_loss", definition="F-beta of predicted label sets, averaged per sample (default), "
                                           "micro or macro", competitions="Planet: Understanding the Amazon "
                                                                          "from Space (beta 2, samples)"),
    MetricDef("micro_f1", "max", "label_sets", micro_f1, ("label",), ("multilabel",), proxy="log_loss",
              definition="F1 of every (image, class) decision pooled"),
    MetricDef("map_at_k", "max", "ranking", map_at_k, ("top_k",), _CLASS, (K,), proxy="log_loss",
              definition="mean over rows of the average precision of the k ranked labels (1/rank of the true "
                         "one)",
              competitions="Humpback Whale Identification (k=5), Quick, Draw! Doodle Recognition (k=3)"),
    MetricDef("rmse", "min", "numbers", rmse, ("number",), ("regression",),
              definition="sqrt(mean((truth - predicted)^2))", competitions="PetFinder.my Pawpularity"),
    MetricDef("mae", "min", "numbers", mae, ("number",), ("regression",),
              definition="mean(|truth - predicted|)", competitions="age and count estimation competitions"),
    MetricDef("dice", "max", "masks", dice, ("rle",), ("segmentation",),
              definition="mean over images of 2|A∩B|/(|A|+|B|); empty in both scores 1",
              competitions="Carvana, SIIM-ACR Pneumothorax, Severstal"),
    MetricDef("mean_dice_pairs", "max", "masks", mean_dice_pairs, ("rle",), ("segmentation",),
              definition="mean over image–class pairs of 2|A∩B|/(|A|+|B|); a pair empty in both scores 1",
              competitions="Severstal: Steel Defect Detection, Understanding Clouds from Satellite Images"),
    MetricDef("airbus_f2", "max", "masks", airbus_f2, ("rle",), ("segmentation",), proxy="dice",
              definition="F2 over IoU thresholds 0.5..0.95 per image, matched objects, mean over images",
              competitions="Airbus Ship Detection"),
    MetricDef("mean_iou", "max", "boxes", mean_iou, ("boxes", "rle"), ("localization", "segmentation"),
              definition="mean over images of |A∩B|/|A∪B| (boxes or masks)"),
    MetricDef("wheat_map", "max", "detections", wheat_map, ("prediction_string",), _DETECTION,
              definition="per image, the mean over IoU 0.50:0.05:0.75 of TP/(TP+FP+FN) (greedy matching by "
                         "score), then the mean over images; nothing true nor predicted scores 1",
              competitions="Global Wheat Detection"),
    MetricDef("coco_map", "max", "detections", coco_map, ("prediction_string",), _DETECTION,
              definition="COCO mAP@[.5:.95]: per class 101-point interpolated AP, mean over classes and IoU "
                         "0.50:0.05:0.95 (pycocotools' stats[0])",
              competitions="COCO-style detection competitions"),
    MetricDef("map_at_iou", "max", "detections", map_at_iou, ("prediction_string",), _DETECTION,
              (IOU, INTERPOLATION), definition="mAP at one IoU threshold: per class AP, mean over classes",
              competitions="VinBigData Chest X-ray Abnormalities Detection (iou=0.4)"),
    MetricDef("f2_iou", "max", "detections", f2_iou, ("prediction_string",), _DETECTION,
              definition="per IoU 0.30:0.05:0.80, F2 of TP/FP/FN summed over images; mean over thresholds",
              competitions="TensorFlow - Help Protect the Great Barrier Reef"),
)}

SUBMISSION_FORMS: tuple[str, ...] = ("label", "probability", "probabilities", "top_k", "number", "rle", "boxes",
                                     "prediction_string")  # detection (podium.submission.prediction_string)


def monitor_direction(monitor: str) -> str:
    """min or max for a logged column: a registry metric's own direction (val_log_loss: min, val_qwk: max),
    else min for a loss or an error, else max (accuracy, AUC, IoU) as Keras' MonitorCallback reads names."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name in METRICS:
        return METRICS[name].direction
    return "min" if "loss" in monitor.lower() or "error" in monitor.lower() else "max"


def metric_names() -> list[str]:
    return list(METRICS)


def resolve_metric(value: str | Mapping[str, Any] | Metric) -> Metric:
    """A metric from a spec's or a config's `metric:`: a name, `name(param=value)`, or {name: ..., param: ...}.
    An unknown name, a missing or unknown parameter, or a value out of range is a PodiumError naming the
    valid ones."""
    if isinstance(value, Metric):
        return value
    name, given = _parse(value)
    if name not in METRICS:
        close = difflib.get_close_matches(str(name), METRICS, n=1)
        raise PodiumError(f"Unknown metric {name!r}.", expected=f"one of: {', '.join(METRICS)}",
                          received=repr(name), fix=f"did you mean {close[0]!r}?" if close else
                          "pick the metric on the competition's Evaluation page (docs/metrics.md)")
    entry = METRICS[name]
    allowed = {p.name: p for p in entry.params}
    for key in given:
        if key not in allowed:
            raise PodiumError(f"Metric {name} has no parameter {key!r}.",
                              expected=f"parameters: {', '.join(allowed) or 'none'}", received=repr(key),
                              fix=f"remove {key}" if not allowed else f"use one of: {', '.join(allowed)}")
    resolved = []
    for param in entry.params:
        if param.name not in given and param.default is None:
            raise PodiumError(f"Metric {name} needs the parameter {param.name}.",
                              expected=f"{{name: {name}, {param.name}: <value>}} ({param.text})",
                              received=repr(value), fix=f"e.g. metric: {{name: {name}, {param.name}: 5}}")
        resolved.append((param.name, param.check(name, given.get(param.name, param.default))))
    return Metric(entry, tuple(resolved))


def _parse(value: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(value, Mapping):
        given = dict(value)
        if "name" not in given:
            raise PodiumError("A metric mapping has no name.", expected="{name: map_at_k, k: 5}",
                              received=repr(value), fix="add name: <metric>")
        return str(given.pop("name")), given
    if not isinstance(value, str) or not value.strip():
        raise PodiumError("A metric is a name or a mapping.", expected=f"one of: {', '.join(METRICS)}",
                          received=repr(value), fix="e.g. metric: log_loss, or metric: {name: map_at_k, k: 5}")
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\- ]*?[A-Za-z0-9_])\s*(?:\((.*)\))?\s*", value)
    if not match:
        raise PodiumError("A metric name is not readable.", expected="name or name(param=value, ...)",
                          received=repr(value), fix="e.g. map_at_k(k=5)")
    given: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in (match.group(2) or "").split(","))):
        key, sep, raw = part.partition("=")
        if not sep:
            raise PodiumError(f"Metric parameter {part!r} is not key=value.", expected="name(param=value)",
                              received=repr(value), fix="e.g. fbeta(beta=2, average=samples)")
        given[key.strip()] = _scalar(raw.strip())
    return match.group(1), given


def _scalar(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_metric_form(metric: Metric, form: str, task: str, where: str = "the competition spec") -> None:
    """The metric can score the submission form and the task's outputs: refused before anything trains."""
    if not metric.spec.scores(task):
        fits = [name for name, entry in METRICS.items() if entry.scores(task)]
        raise PodiumError(f"Metric {metric.label} in {where} cannot score task {task}.",
                          expected=f"a metric of {task}: {', '.join(fits)}",
                          received=f"metric {metric.label} (tasks: {', '.join(metric.spec.tasks)})",
                          fix="set the metric named on the competition's Evaluation page, or the task it needs")
    if form not in metric.spec.forms:
        raise PodiumError(f"Metric {metric.label} cannot score a submission of form {form!r} ({where}).",
                          expected=f"submission_format: {' or '.join(metric.spec.forms)}",
                          received=f"submission_format: {form}",
                          fix="look at the sample submission: its columns decide the form (`make spec` infers it)")
