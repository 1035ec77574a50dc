"""Competition specs: what a Kaggle competition's files look like and what its submission must be.

A spec is data (a YAML file), so a new competition with a known layout needs no code. Built-in specs
live beside this module in competitions/<slug>.yaml; any other path to a YAML file works too.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from podium.errors import PodiumError
from podium.paths import check_name
from podium.io import read_yaml_mapping
from podium.scoring.registry import Metric, check_metric_form, resolve_metric
from podium.submission.prediction_string import FORMATS, StringFormat
from podium.task_keys import TaskName, task_keys, tasks_where

SPEC_DIR = Path(__file__).parents[1] / "competitions"  # package data: src/podium/competitions/*.yaml


@dataclass(frozen=True)
class CompetitionSpec:
    slug: str
    title: str = ""
    task: TaskName = "classification"
    # embedded: files ship inside podium (the demo); generated: the ellipse-and-rectangle shapes, written on `make data`
    source: Literal["kaggle", "embedded", "generated"] = "kaggle"
    # folder: <train_dir>/<class>/<image>; csv: labels_csv names each image and its label; pixels: the images
    # are rows of CSVs (labels_csv: a label column and pixel columns; test_csv: pixel columns); filename: the
    # label is part of each train file's name (cat.123.jpg), read with label_pattern
    layout: Literal["folder", "csv", "pixels", "filename"] = "folder"
    archives: tuple[str, ...] = ("train.zip", "test.zip")  # extracted into data/<slug>/
    train_dir: str = "train"  # relative to data/<slug>/
    labels_csv: str = ""  # csv layout: relative to data/<slug>/
    id_column: str = "id"  # csv layout: the image column (file name or stem, found anywhere under train_dir)
    label_column: str = "label"
    test_dir: str = "test"
    # pixels: the test CSV (pixel columns; ids from id_column when it has one, else 1-based row numbers)
    test_csv: str = "test.csv"
    # pixels: [height, width] (gray) or [height, width, 3] (RGB, channels last); empty: a square gray image of
    # the pixel column count's square root (784 -> 28 x 28)
    image_shape: tuple[int, ...] = ()
    # filename: a regex with one group, matched at the start of each train file name; the group is the label.
    # Empty: the text before the first dot, in names with a part between it and the extension (cat.123.jpg -> cat)
    label_pattern: str = ""
    sample_submission: str = "sample_submission.csv"
    submission_id_column: str = "id"
    submission_label_column: str = "label"
    submission_id: Literal["stem", "filename"] = "stem"  # how the submission names a test image
    image_extensions: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
    classes: tuple[str, ...] = ()  # fixed class order; empty: sorted labels found in train
    # a labels CSV column whose equal values must stay in one fold (patient id, scene id; podium.data.groups):
    # merged with the near-duplicate groups; "" = none
    group_column: str = ""
    # the competition's metric (podium.scoring.registry, docs/metrics.md): a name, or a name with its
    # parameters ({name: map_at_k, k: 5}); it picks the checkpoint, scores folds, fits blends (`resolved_metric`);
    # "" = the task's usual one (TaskKeys.default_metric: accuracy, dice, mean_iou, micro_f1, rmse)
    metric: Any = ""
    # what the submission holds (docs/competition-spec.md): label | probability (one column, P(positive_class))
    # | probabilities (a column per class, named as the sample names them) | top_k (k space-separated labels,
    # best first) | number | rle | boxes; "" = the task's own (label, rle, boxes, number)
    submission_format: str = ""
    positive_class: str = ""  # probability: the class whose probability the column holds ("" = the last class)
    top_k: int = 0  # top_k: labels per row (0 = the metric's k)
    box_format: Literal["xyxy", "xywh"] = "xyxy"  # localization: how the spec's files write a box
    # segmentation: labels_csv's column of run-length strings, one row per object (Airbus); an image
    # without objects has one row with an empty string. The submission writes the same column.
    rle_column: str = "EncodedPixels"
    # segmentation with several classes (docs/tasks.md): "" = one mask per image (Airbus); exclusive = a pixel
    # holds at most one class (a softmax with a background channel, Severstal); overlapping = classes may share
    # pixels (a sigmoid per class, Understanding Clouds). Needs `classes`: the class ids as the files write
    # them (1..4, Fish..Sugar), in channel order
    class_masks: str = ""
    # the labels CSV's class column: detection, one class per box row ("" = one class: classes[0], else
    # "object"); class_masks, the class beside id_column ("" = id_column joins image and class as
    # <image>_<class>: Severstal's ImageId_ClassId, Clouds' Image_Label)
    class_column: str = ""
    # class_masks: the sample submission's class column beside submission_id_column; "" = the id joins them
    submission_class_column: str = ""
    # localization: labels_csv's (and the submission's) box columns, in pixels of the original image;
    # detection: the labels CSV's, one row per box, or one column holding the box as a list ("[x, y, w, h]")
    box_columns: tuple[str, ...] = ("x1", "y1", "x2", "y2")
    # detection: how the submission writes boxes (podium.submission.prediction_string): a preset (global_wheat,
    # vinbigdata, great_barrier_reef) or {box_format, has_class, score_first, empty_row}; "" = box_format's
    # boxes, score first, a class first when class_column is set, "" for an image without boxes
    prediction_string: Any = ""
    rules_url: str = ""
    # false: a mirrored image changes its meaning (digits, letters, text), so flip augments and flipped TTA
    # views are refused at config load; true: flips are fine; unset: podium.data.advice warns on a hunch
    flip_invariant: bool | None = None
    # csv: `make submit` uploads the CSV; code: Kaggle re-runs a kernel version on the hidden test set and
    # scores the submission.csv it writes, so `make submit` submits the pushed kernel version instead
    submission_kind: Literal["csv", "code"] = "csv"
    # code: how many images the hidden test set holds (0: as many as the visible test set) and the re-run's time
    # limit in hours (0: not stated; a code competition is then assumed to have Kaggle's usual 9 h); `make
    # rehearse` extrapolates its measured time to them and warns when it would not fit (podium.kaggle.rehearse)
    hidden_test_images: int = 0
    time_limit_hours: float = 0.0

    @property
    def root_hint(self) -> str:
        return f"data/{self.slug}"

    @property
    def resolved_label_pattern(self) -> str:
        return self.label_pattern or DEFAULT_LABEL_PATTERN

    @property
    def resolved_metric(self) -> Metric:
        """The spec's metric; unset: the task's usual one (mean Dice over image–class pairs for class masks)."""
        return resolve_metric(self.metric or ("mean_dice_pairs" if self.class_masks
                                              else task_keys(self.task).default_metric))

    @property
    def resolved_submission_format(self) -> str:
        return self.submission_format or task_keys(self.task).submission_form

    @property
    def resolved_prediction_string(self) -> StringFormat:
        """The submission's PredictionString format: the preset named, the fields given, or the default."""
        return prediction_string_format(self.prediction_string, self.box_format, bool(self.class_column))

    @property
    def resolved_top_k(self) -> int:
        """k of a top_k submission: the spec's top_k, else the metric's k."""
        return self.top_k or int(self.resolved_metric.kwargs.get("k", 0))


# layout filename: the text before the first dot of a name with a part between label and extension
# (cat.123.jpg -> cat); a stray README.png matches nothing, so it is named, not read as a class of one
DEFAULT_LABEL_PATTERN = r"([^.]+)\.[^.]+\."


def builtin_slugs() -> list[str]:
    return sorted(p.stem for p in SPEC_DIR.glob("*.yaml"))


def load_competition(name_or_path: str) -> CompetitionSpec:
    """A built-in slug or a path to a spec YAML; unknown fields are errors, as in the config."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = SPEC_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise PodiumError(f"Unknown competition '{name_or_path}'.",
                              expected=f"a built-in slug ({', '.join(builtin_slugs())}) or a path to a spec YAML",
                              received=repr(name_or_path),
                              fix="draft one with `make spec SRC=<folder of downloaded files>` "
                                  "(docs/competition-spec.md) and pass its path")
    elif not path.is_file():
        raise PodiumError(f"Competition spec {path} does not exist.", expected="a YAML competition spec",
                          received=str(path), fix="check the path")
    raw = read_yaml_mapping(path, "Competition spec", "src/podium/competitions/demo.yaml",
                            "write one 'field: value' per line, as src/podium/competitions/demo.yaml does")
    known = [f.name for f in dataclasses.fields(CompetitionSpec)]
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise PodiumError(f"Unknown field '{key}' in competition spec {path}.",
                              expected=f"one of: {', '.join(known)}", received=repr(key),
                              fix=f"did you mean '{close[0]}'?" if close else "remove it")
    for key in ("archives", "image_extensions", "classes", "box_columns"):
        if key in raw:
            raw[key] = tuple(str(v) for v in raw[key])
    if "slug" not in raw:
        raise PodiumError(f"Competition spec {path} has no slug.", expected="slug: <kaggle competition slug>",
                          received=", ".join(raw) or "an empty file", fix="add a slug line")
    if isinstance(raw.get("image_shape"), list):
        raw["image_shape"] = tuple(raw["image_shape"])
    check_name(raw["slug"], f"slug (competition spec {path})", "dog-breed-identification")
    spec = CompetitionSpec(**raw)
    _check_task_layout(spec, path)
    _check_layout_fields(spec, path)
    _check_contract(spec, path)
    _check_group_column(spec, path)
    _check_detection_fields(spec, path)
    _check_class_masks(spec, path)
    _check_time_fields(spec, path)
    if task_keys(spec.task).box_lists and not spec.classes and not spec.class_column:
        spec = dataclasses.replace(spec, classes=(DEFAULT_BOX_CLASS,))  # one class, and every stage names it
    return spec


def _check_time_fields(spec: CompetitionSpec, path: Path) -> None:
    """hidden_test_images a whole number >= 0, time_limit_hours a number >= 0 (YAML's true is no number)."""
    for name, kinds, text in (("hidden_test_images", (int,), "a whole number of images >= 0"),
                              ("time_limit_hours", (int, float), "a number of hours >= 0")):
        value = getattr(spec, name)
        if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
            example = 9 if name == "time_limit_hours" else 100000
            raise PodiumError(f"Competition spec {path}: {name} is not {text}.", expected=text,
                              received=f"{name}: {value!r}", fix=f"write e.g. {name}: {example}, unquoted (0: not stated)")


DEFAULT_BOX_CLASS = "object"  # the one class of a detection spec naming neither class_column nor classes
STRING_FIELDS = ("box_format", "has_class", "score_first", "empty_row")  # a prediction_string mapping's keys


def prediction_string_format(value: Any, box_format: str = "xyxy", has_class: bool = False) -> StringFormat:
    """A spec's prediction_string as a StringFormat: a preset's name, a mapping of its fields (unset fields from
    the spec: its box_format, a class when it has a class column), or "" for those defaults alone."""
    if isinstance(value, StringFormat):
        return value
    if isinstance(value, str) and value:
        if value not in FORMATS:
            raise PodiumError(f"Unknown prediction_string preset {value!r}.", expected=f"one of: {', '.join(FORMATS)}, "
                              f"or a mapping of {', '.join(STRING_FIELDS)}", received=repr(value),
                              fix="name a preset, or write the fields: {box_format: xywh, has_class: false}")
        return FORMATS[value]
    fields = {"box_format": box_format, "has_class": has_class, "score_first": True, "empty_row": ""}
    if isinstance(value, dict):
        unknown = [key for key in value if key not in STRING_FIELDS]
        if unknown:
            raise PodiumError(f"Unknown prediction_string field {unknown[0]!r}.", expected=f"fields among: "
                              f"{', '.join(STRING_FIELDS)}", received=repr(sorted(value)), fix="remove or rename it")
        wrong = [key for key in ("has_class", "score_first") if key in value and not isinstance(value[key], bool)]
        if wrong:
            raise PodiumError(f"prediction_string's {wrong[0]} is not true or false.", expected="true or false",
                              received=f"{wrong[0]}: {value[wrong[0]]!r}", fix="write true or false, unquoted")
        fields.update({key: (str(v) if key == "empty_row" and v is not None else v) for key, v in value.items()})
        fields["empty_row"] = fields["empty_row"] or ""
    elif value not in ("", None):
        raise PodiumError("prediction_string is neither a preset name nor a mapping.",
                          expected=f"a preset ({', '.join(FORMATS)}) or a mapping of {', '.join(STRING_FIELDS)}",
                          received=repr(value), fix="e.g. prediction_string: global_wheat")
    return StringFormat(**fields)


def _check_detection_fields(spec: CompetitionSpec, path: Path) -> None:
    """class_column and prediction_string belong to detection; its string format is well formed."""
    detection = task_keys(spec.task).box_lists
    for name, default in (("class_column", ""), ("prediction_string", "")):
        if name == "class_column":
            continue  # detection's, or a class mask's (_check_class_masks refuses it elsewhere)
        if not detection and getattr(spec, name) not in (default, None):
            raise PodiumError(f"Competition spec {path} sets {name} with task {spec.task}.",
                              expected=f"{name} only with task: detection", received=f"{name}: {getattr(spec, name)!r}",
                              fix=f"remove {name}, or set task: detection")
    if detection and not spec.class_column and len(spec.classes) > 1:
        raise PodiumError(f"Competition spec {path} lists {len(spec.classes)} classes without a class_column.",
                          expected="class_column naming the labels CSV's class of each box, or one class",
                          received=f"classes: {list(spec.classes)}", fix="set class_column, or list one class")
    if detection:
        try:
            spec.resolved_prediction_string
        except PodiumError as exc:
            raise PodiumError(f"Competition spec {path}: {exc.what}", expected=exc.expected, received=exc.received,
                              fix=exc.fix) from None


CLASS_MASKS = {"": "one mask per image", "exclusive": "a pixel holds at most one class (softmax + background)",
               "overlapping": "classes may share pixels (a sigmoid per class)"}


def _check_class_masks(spec: CompetitionSpec, path: Path) -> None:
    """class_masks is a known kind, on a segmentation spec with its classes (none holding the `_` that joins an
    image and its class in one id); the class columns belong to it."""
    if spec.class_masks not in CLASS_MASKS:
        raise PodiumError(f"Competition spec {path} has an unknown class_masks {spec.class_masks!r}.",
                          expected="one of: " + "; ".join(f"{k or '(empty)'}: {v}" for k, v in CLASS_MASKS.items()),
                          received=f"class_masks: {spec.class_masks}", fix="set one of the listed values")
    if not spec.class_masks:
        for key in ("class_column", "submission_class_column"):
            if getattr(spec, key) and not (key == "class_column" and task_keys(spec.task).box_lists):
                raise PodiumError(f"Competition spec {path} sets {key} without class_masks.",
                                  expected="class_masks: exclusive | overlapping beside it (segmentation), or "
                                           "task: detection (a class per box)",
                                  received=f"{key}: {getattr(spec, key)}", fix=f"set class_masks, or remove {key}")
        return
    joined = not spec.class_column or not spec.submission_class_column
    if spec.task != "segmentation" or not spec.classes or len(set(spec.classes)) != len(spec.classes) \
            or (joined and any("_" in c for c in spec.classes)):
        raise PodiumError(f"Competition spec {path} sets class_masks: {spec.class_masks} without a segmentation "
                          f"task and distinct classes.",
                          expected="task: segmentation and classes: [the class ids as the files write them], "
                                   "without `_` where an id joins image and class",
                          received=f"task: {spec.task}, classes: {list(spec.classes)}",
                          fix="e.g. task: segmentation, classes: [1, 2, 3, 4]")
    if spec.resolved_metric.name != "mean_dice_pairs":
        raise PodiumError(f"Competition spec {path} scores class masks with {spec.resolved_metric.label}.",
                          expected="metric: mean_dice_pairs (or none: the mean Dice over image–class pairs)",
                          received=f"metric: {spec.resolved_metric.label}", fix="set metric: mean_dice_pairs")


def _check_group_column(spec: CompetitionSpec, path: Path) -> None:
    """group_column names a column of the labels CSV (checked against the file at `make data`)."""
    if not spec.group_column:
        return
    if not spec.labels_csv:
        raise PodiumError(f"Competition spec {path} has group_column {spec.group_column!r} without a labels CSV.",
                          expected="labels_csv naming the CSV that holds the group column (e.g. train.csv)",
                          received=f"group_column: {spec.group_column}, labels_csv: ''",
                          fix="set labels_csv to the CSV with one row per train image, or remove group_column")
    if spec.group_column in (spec.label_column, spec.id_column):
        role = "label" if spec.group_column == spec.label_column else "id"
        raise PodiumError(f"Competition spec {path} has group_column equal to its {role}_column.",
                          expected="a column grouping images (patient, scene), neither the id nor the label",
                          received=f"group_column: {spec.group_column}",
                          fix="name the column of the patient / scene id, or remove group_column")


def _check_contract(spec: CompetitionSpec, path: Path) -> None:
    """The metric exists, can score the task and the submission's form, and the form has what it needs:
    all refused at `make data` / `make config`, before anything trains."""
    if not isinstance(spec.top_k, int) or isinstance(spec.top_k, bool):
        raise PodiumError(f"Competition spec {path} has a top_k that is not a whole number.",
                          expected="top_k: <labels per row>, e.g. 5", received=f"top_k: {spec.top_k!r}",
                          fix="write the number without quotes")
    metric = spec.resolved_metric
    form = spec.resolved_submission_format
    check_metric_form(metric, form, spec.task, where=f"competition spec {path}")
    if form == "top_k" and spec.resolved_top_k < 1:
        raise PodiumError(f"Competition spec {path} has submission_format: top_k without k.",
                          expected="top_k: <labels per row>, or a metric with k ({name: map_at_k, k: 5})",
                          received=f"top_k: {spec.top_k}, metric: {metric.label}", fix="add e.g. top_k: 5")
    if spec.positive_class and spec.classes and spec.positive_class not in spec.classes:
        raise PodiumError(f"Competition spec {path} has a positive_class that is not one of its classes.",
                          expected=f"one of: {', '.join(spec.classes)}", received=f"positive_class: {spec.positive_class}",
                          fix="name the class whose probability the sample's column holds")
    if spec.top_k < 0:
        raise PodiumError(f"Competition spec {path} has a negative top_k.", expected="top_k >= 1",
                          received=f"top_k: {spec.top_k}", fix="set top_k to the labels per row")


def _check_task_layout(spec: CompetitionSpec, path: Path) -> None:
    """Masks, boxes and label sets come from a CSV; a folder-per-class layout has nowhere to keep them."""
    if task_keys(spec.task).needs_labels_csv and (spec.layout != "csv" or not spec.labels_csv):
        raise PodiumError(f"Competition spec {path} has task {spec.task} without a labels CSV.",
                          expected="layout: csv and labels_csv naming the file of run-length masks (segmentation), "
                                   "boxes (localization, detection) or space-separated labels (multilabel)",
                          received=f"layout: {spec.layout}, labels_csv: {spec.labels_csv!r}",
                          fix="set layout: csv and labels_csv (see src/podium/competitions/airbus-ship-detection.yaml)")
    one_column = task_keys(spec.task).box_lists and len(spec.box_columns) == 1  # Global Wheat's bbox "[x, y, w, h]"
    if not one_column and (len(spec.box_columns) != 4 or len(set(spec.box_columns)) != 4):
        raise PodiumError(f"Competition spec {path} needs four distinct box_columns.",
                          expected="four names, e.g. [x1, y1, x2, y2] (xyxy) or [x, y, w, h] (xywh)"
                                   + ("; detection: or one column holding the box as a list, e.g. [bbox]"
                                      if task_keys(spec.task).box_lists else ""),
                          received=repr(list(spec.box_columns)), fix="list the four column names in box_format order")


def _check_layout_fields(spec: CompetitionSpec, path: Path) -> None:
    """image_shape and label_pattern are well formed and belong to the layout that reads them."""
    if spec.layout == "pixels" and not task_keys(spec.task).pixel_layout:
        pixels = "|".join(tasks_where("pixel_layout"))
        raise PodiumError(f"Competition spec {path} has layout: pixels with task {spec.task}.",
                          expected=f"task: {pixels} (a label column beside the pixel columns)",
                          received=f"task: {spec.task}", fix="set task: classification, or another layout")
    shape = spec.image_shape
    if shape:
        if spec.layout != "pixels":
            raise PodiumError(f"Competition spec {path} sets image_shape with layout: {spec.layout}.",
                              expected="image_shape only with layout: pixels (images stored as CSV pixel columns)",
                              received=f"image_shape: {list(shape)}", fix="remove image_shape, or set layout: pixels")
        valid = (isinstance(shape, tuple) and len(shape) in (2, 3)
                 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
                 and (len(shape) == 2 or shape[2] in (1, 3)))
        if not valid:
            raise PodiumError(f"Competition spec {path} has an invalid image_shape.",
                              expected="[height, width] (gray) or [height, width, 3] (RGB), positive integers",
                              received=f"image_shape: {shape!r}", fix="e.g. image_shape: [28, 28]")
    if spec.label_pattern:
        if spec.layout != "filename":
            raise PodiumError(f"Competition spec {path} sets label_pattern with layout: {spec.layout}.",
                              expected="label_pattern only with layout: filename (the label in the file name)",
                              received=f"label_pattern: {spec.label_pattern!r}",
                              fix="remove label_pattern, or set layout: filename")
        try:
            groups = re.compile(spec.label_pattern).groups
        except re.error as exc:
            raise PodiumError(f"Competition spec {path} has a label_pattern that is not a regular expression.",
                              expected="a Python regex with one group, e.g. '([a-z]+)_' for cat_12.jpg",
                              received=f"{spec.label_pattern!r} ({exc})", fix="fix the pattern") from None
        if groups != 1:
            raise PodiumError(f"Competition spec {path} has a label_pattern with {groups} groups.",
                              expected="exactly one group: the part of the file name that is the label",
                              received=repr(spec.label_pattern),
                              fix="wrap the label part in (...) and make other groups non-capturing (?:...)")
