"""What a sample submission's columns and values say the submission holds (`make spec`'s submission_format),
and the metric that usually scores that form, each with the reason written beside it in the drafted spec.

A sample's values are placeholders (0.5, a constant class, a few ids), so only what a placeholder still
shows is read: a column per class holding numbers (probabilities), one column of numbers in 0..1 (probability)
or outside it (number), space-separated names (top_k when every row holds the same count, multi-label when
the train labels are label sets), anything else one class name (label). The train labels settle what a
placeholder cannot: numbers that are not whole (a share, a score) make any numeric sample a `number` (task
regression, even within 0..1); a few whole numbers in a row (0..4) named like a grade are an ordinal target
(metric qwk, drafted on classification; the note names regression's qwk, usually the better, as the other choice).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

# the metric `make spec` drafts for each form: the commonest on Kaggle; the competition's Evaluation page decides
DEFAULT_METRICS = {"label": "accuracy", "probability": "log_loss", "probabilities": "log_loss", "number": "rmse"}
CHECK_PAGE = "check the competition's Evaluation page"
MAX_GRADES = 7  # an ordinal target has a few grades (APTOS 0..4, PANDA 0..5); digits 0..9 are classes
GRADE_NAMES = ("grade", "level", "severity", "diagnosis", "score", "rating", "stage", "isup")  # column names saying so


@dataclass
class FormGuess:
    form: str  # submission_format: label | probability | probabilities | top_k | number
    label_column: str  # the sample's prediction column (probabilities: the first class column, unused)
    metric: str  # a name, or name(k=...) for map_at_k
    reason: str  # why this form: written beside submission_format
    metric_note: str
    k: int = 0  # top_k: labels per row
    positive_class: str = ""  # probability: the class whose probability the column holds
    positive_note: str = ""
    multilabel: bool = False  # the train labels are label sets: task multilabel
    notes: list[str] = field(default_factory=list)  # further facts for the spec's header
    grades: list[int] = field(default_factory=list)  # the train labels are these whole numbers in a row
    ordinal: bool = False  # ... and the column's name says they are grades (metric qwk drafted)


def infer_submission_form(sample: pd.DataFrame, id_column: str, label_column: str, classes: list[str],
                          label_sets: bool = False) -> FormGuess:
    """The form the sample shows, given the train labels' class names (`label_sets`: the train labels are
    space-separated sets). Columns are read as text (pandas dtype=str, as `make data` reads them)."""
    others = [name for name in sample.columns if name != id_column]
    if len(others) >= 2 and all(_numbers(sample[name]) for name in others):
        return _probabilities(others, classes)
    values = [text.strip() for text in sample[label_column].astype(str) if text.strip()]
    numbers = _floats(values)
    if values and numbers is not None:
        return _numeric(label_column, values, numbers, classes)
    return _names(label_column, values, label_sets)


def _probabilities(others: list[str], classes: list[str]) -> FormGuess:
    """Two or more number columns beyond the id: a probability per class (a note names those naming no class)."""
    named = [name for name in others if name in set(classes)]
    reason = (f"the sample has {len(others)} number columns beyond the id"
              + (f", {len(named)} of them named as classes found in train" if named else ""))
    notes = []
    if classes and len(named) < len(others):
        notes.append(f"sample columns naming no train class: {', '.join(n for n in others if n not in named)} "
                     f"(submission_format: probabilities needs a column per class: check classes)")
    return FormGuess("probabilities", others[0], "log_loss", reason + ": a probability per class",
                     f"{CHECK_PAGE}: log_loss (Leaf Classification) and mean_columnwise_auc (Plant Pathology "
                     f"2020) both read a probability per class", notes=notes)


def _numeric(label_column: str, values: list[str], numbers: list[float], classes: list[str]) -> FormGuess:
    """One column of numbers: class codes (whole numbers naming classes, maybe grades), a number per image
    (the train labels are not whole, or the numbers leave 0..1), else P(one class)."""
    integers = all(number.is_integer() for number in numbers) and not any("." in v or "e" in v.lower()
                                                                           for v in values)
    if integers and set(values) <= set(classes):
        grades = _grades(classes)
        if grades:
            return _ordinal(label_column, grades)
        return _label(label_column, f"column {label_column!r} holds whole numbers that are class names")
    targets = _floats(classes)
    if targets and not all(target.is_integer() for target in targets):
        return FormGuess("number", label_column, "rmse",
                         f"the train labels are numbers that are not whole ({len(targets)} distinct, from "
                         f"{min(targets):g} to {max(targets):g}) and column {label_column!r} holds numbers: a "
                         f"number per image (regression)",
                         f"{CHECK_PAGE}: rmse (PetFinder Pawpularity) or mae; qwk reads whole-number grades")
    if min(numbers) >= 0 and max(numbers) <= 1:
        return _probability(label_column, values, classes)
    return FormGuess("number", label_column, "rmse",
                     f"column {label_column!r} holds numbers outside 0..1 (from {min(numbers):g} to "
                     f"{max(numbers):g}) that name no class: a number per image (regression)",
                     f"{CHECK_PAGE}: rmse (PetFinder Pawpularity), mae, or qwk for integer grades")


def _probability(label_column: str, values: list[str], classes: list[str]) -> FormGuess:
    """Numbers in 0..1 naming no class: P(one class), the last of two classes unless the page says otherwise."""
    positive = classes[-1] if len(classes) == 2 else ""
    note = (f"CHECK: the class whose probability the column holds (the Evaluation page says); with two "
            f"classes podium takes the last, {positive!r}" if positive else
            f"MUST be set: {len(classes)} classes, and the column holds one class's probability")
    return FormGuess("probability", label_column, "log_loss",
                     f"column {label_column!r} holds numbers in 0..1 (e.g. {values[0]}): P(one class)",
                     f"{CHECK_PAGE}: log_loss (Dogs vs. Cats Redux) and roc_auc (SIIM-ISIC Melanoma) "
                     f"both read P(positive class)", positive_class=positive, positive_note=note)


def _names(label_column: str, values: list[str], label_sets: bool) -> FormGuess:
    """Text: label sets (multi-label), k ranked names per row (top_k), else one class name per row."""
    counts = sorted({len(value.split()) for value in values})
    if counts and counts[-1] > 1:
        if label_sets:
            return FormGuess("label", label_column, "micro_f1",
                             f"column {label_column!r} holds space-separated names and the train labels are label "
                             f"sets too: a multi-label submission (task multilabel)",
                             f"{CHECK_PAGE}: micro_f1, or fbeta (Planet: beta 2, averaged per sample)", multilabel=True)
        if len(counts) == 1:
            k = counts[0]
            return FormGuess("top_k", label_column, f"map_at_k(k={k})",
                             f"every row of column {label_column!r} holds {k} space-separated names and each train "
                             f"image has one label: a ranking of {k} classes, best first",
                             f"{CHECK_PAGE}: map_at_k with k={k} (Humpback Whale Identification: MAP@5)", k=k)
        return _label(label_column, f"column {label_column!r} holds from {counts[0]} to {counts[-1]} "
                                    f"space-separated names, yet each train image has one label: CHECK (a multi-label "
                                    f"competition needs its train labels as label sets, task multilabel)")
    return _label(label_column, f"column {label_column!r} holds one name per row: one class per image")


def _grades(classes: list[str]) -> list[int]:
    """The train labels as grades when they are 3..MAX_GRADES whole numbers in a row (0, 1, 2, 3, 4), else []."""
    numbers = _floats(classes)
    if not numbers or not all(number.is_integer() for number in numbers):
        return []
    grades = sorted({int(number) for number in numbers})
    return grades if 3 <= len(grades) <= MAX_GRADES and grades[-1] - grades[0] == len(grades) - 1 else []


def _ordinal(label_column: str, grades: list[int]) -> FormGuess:
    """Whole-number classes in a row: a grade competition (APTOS: qwk) or class codes (Cassava: accuracy). The
    column's name decides the draft's metric; the note names the two qwk choices either way."""
    graded = any(word in label_column.lower() for word in GRADE_NAMES)
    span = f"{grades[0]}..{grades[-1]}"
    choices = (f"the train labels are the whole numbers {span} and the sample writes whole numbers: scored by qwk "
               f"(grades), there are two choices, (1) task classification with metric: qwk (a class per grade: this draft's task), or (2) task: regression with metric: qwk and submission_format: "
               f"number (one number per image, cut into grades at points fitted on out-of-fold predictions: how APTOS "
               f"2019 was won, usually the better; label_column stays the grade column)")
    if graded:
        return FormGuess("label", label_column, "qwk", f"column {label_column!r} holds whole numbers that are "
                         f"grades {span} (its name says so): an ordinal target", f"{CHECK_PAGE}; {choices}",
                         grades=grades, ordinal=True)
    return FormGuess("label", label_column, "accuracy", f"column {label_column!r} holds whole numbers that are class "
                     f"names ({span})", f"{CHECK_PAGE}: accuracy for class codes (Cassava's 0..4); if it says "
                     f"quadratic weighted kappa, {choices}", grades=grades)


def _label(label_column: str, reason: str) -> FormGuess:
    return FormGuess("label", label_column, "accuracy", reason,
                     f"{CHECK_PAGE}: accuracy, or macro_f1 / qwk where the page says so")


def _floats(values: list[str]) -> list[float] | None:
    try:
        return [float(value) for value in values]
    except ValueError:
        return None


def _numbers(column: pd.Series) -> bool:
    values = [text.strip() for text in column.astype(str) if text.strip()]
    return bool(values) and _floats(values) is not None
