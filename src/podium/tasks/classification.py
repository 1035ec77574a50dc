"""One label per image: softmax head, (focal) cross-entropy, accuracy. The submission holds what the sample
shows (the spec's submission_format): one class, P(positive class), a probability per class, or k ranked classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from podium.lazy import LazyModule
from podium.data.index import class_names
from podium.io import write_text
from podium.figures import plot_class_distribution
from podium.reports import run_report as report
from podium.data.competitions import load_competition
from podium.scoring import calibration, metrics
from podium.scoring.forms import from_class_probabilities, positive_index
from podium.scoring.run_metric import run_metric
from podium.scoring.metrics import accuracy
from podium.submission.validate import class_submission_problems, validate_class_submission, write_class_submission
from podium.tasks.base import FoldScores, PredictSummary, Task, normalised_rows

# imported on first use: `import podium.tasks` loads no keras
classifier = LazyModule("podium.models.classifier")


def make_loss(cfg):
    import keras

    if cfg.loss == "focal":  # down-weights easy examples, so rare, hard classes keep a voice
        return keras.losses.CategoricalFocalCrossentropy(gamma=cfg.focal_gamma, label_smoothing=cfg.label_smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


class Classification(Task):
    name = "classification"
    score_logged = "val_accuracy"
    metric_name = "accuracy"
    saved_outputs_dtype = None  # its probabilities are oof.parquet's prob_<class> columns
    compile_on_load = True

    def batch_targets(self, cfg, data) -> None:
        return None

    def build_model(self, cfg, num_classes: int):
        return classifier.build_classifier(cfg, num_classes)

    def compile_arguments(self, cfg, num_classes: int) -> dict:
        return {"loss": make_loss(cfg), "metrics": ["accuracy"]}

    own_score = "accuracy"

    def metric_pair(self, metric, data, positions, outputs):
        """Class probabilities in the metric's form: labels, P(positive_class), the rows, or k ranked labels."""
        spec = data.spec
        positive = positive_index(spec.positive_class, data.classes) \
            if metric.reads == "probability" or data.num_classes == 2 else 1
        return from_class_probabilities(metric, data.labels[positions], outputs, positive=positive, k=spec.top_k)

    def own_fold_scores(self, data, positions, fold, plain, with_tta) -> FoldScores:
        labels = data.labels[positions]
        oof = pd.DataFrame({"id": data.ids[positions], "label": labels, "fold": fold,
                            "pred": plain.argmax(1), "pred_tta": with_tta.argmax(1)})
        for k, name in enumerate(data.classes):
            oof[f"prob_{name}"] = with_tta[:, k].astype("float32")
        return FoldScores(accuracy(labels, oof["pred"]), accuracy(labels, oof["pred_tta"]), {}, oof)

    def per_sample_scores(self, data, positions, predictions) -> np.ndarray:
        return (predictions.argmax(1) == data.labels[positions]).astype(float)

    def run_report(self, data, oof, run_dir, plots):
        """Per-class table, confusion matrix and class distribution of the out-of-fold predictions."""
        table = metrics.classification_table(oof["label"], oof["pred_tta"], data.classes)
        table.to_csv(run_dir / "per_class.csv")
        write_text(run_dir / "per_class.md", report.per_class_table_markdown(table))
        report.plot_confusion(metrics.confusion(oof["label"], oof["pred_tta"], data.num_classes), data.classes,
                              plots / "confusion.png")
        counts = pd.Series(data.classes)[data.labels].value_counts()
        plot_class_distribution({name: int(counts.get(name, 0)) for name in data.classes},
                                       plots / "class_distribution.png")
        return {"macro_f1": float(table.loc["macro avg", "f1"])}, table

    def blend_positive(self, spec, classes):
        return positive_index(spec.positive_class, classes) if len(classes) == 2 or spec.positive_class else 1

    def blend_score(self, metric, values, truth, fit_values, fit_truth, positive=1, k=0):
        """Blended class probabilities in the metric's form; rmse (QWK's proxy) on the expected grade."""
        if metric.reads == "numbers":  # rmse, QWK's proxy: the expected grade against the true one
            return metric(truth, normalised_rows(values) @ np.arange(values.shape[1]))
        probs = normalised_rows(values) if metric.reads in ("probability", "probabilities") else values
        return metric(*from_class_probabilities(metric, truth, probs, positive=positive, k=k))

    package_file_names = (calibration.CALIBRATION,)

    def package_files(self, cfg, classes):
        """The run's temperature (fitted on its OOF rows) where its metric reads probabilities."""
        spec = load_competition(cfg.competition)
        fitted = calibration.run_calibration(cfg.run_dir, run_metric(cfg, spec), self.name, classes,
                                             spec.positive_class)
        return [Path(cfg.run_dir) / calibration.CALIBRATION] if fitted is not None else []

    def write_submission(self, cfg, spec, classes, prior, predictions, sample, path: Path):
        rows = predictions.rows
        probs = np.tile(prior, (len(rows), 1))  # an undecodable image still needs a row
        probs[predictions.readable] = predictions.values
        write_class_submission(path, sample, rows["id"].tolist(), probs, classes, spec)
        scored = rows["id"].astype(str).isin(set(sample[spec.submission_id_column]))
        counts = pd.Series(np.asarray(classes)[probs[scored.to_numpy()].argmax(1)]).value_counts()
        return PredictSummary(submission=path, n_rows=len(sample), n_unreadable=predictions.n_unreadable,
                              counts={k: int(v) for k, v in counts.items()},
                              unreadable_note="the training class prior")

    labels_per_image = True

    def rehearsal_problems(self, frame, sample, spec, classes):
        return class_submission_problems(frame, sample, spec, classes)

    def validate_submission(self, frame, sample, spec, index) -> None:
        validate_class_submission(frame, sample, spec, class_names(index, spec, self))
