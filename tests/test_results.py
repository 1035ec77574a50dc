"""The search's table on a real 2-parameter grid x 2 seeds on the demo (tiny CNN, 32 px, 2 epochs)."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from podium.tasks import get_task
from podium.search import results
from podium.cli.main import main
from podium.config import load_config
from podium.search.study import load_space, open_study, run_search
from podium.runners.train import train_and_evaluate

SLOW = pytest.mark.slow  # the grid fixture: eight short trainings, ~40 s on 2 cores


def write_space(path, demo_data, runs_dir, **extra):
    space = {
        "base": "configs/demo.yaml", "seeds": 2, "sampler": "grid",
        "overrides": {"data_dir": str(demo_data), "runs_dir": str(runs_dir), "epochs": 2, "verbose": 0,
                      "schedule": "constant", "early_stopping_patience": 5},
        "params": {"lr": [0.001, 0.004], "augment": [["flip"], ["flip", "crop"]]},
        "pruner": {"type": "none"},
    }
    space.update(extra)
    path.write_text(yaml.safe_dump(space))
    return path


@pytest.fixture(scope="module")
def finished_grid(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("grid")
    space = load_space(write_space(root / "grid.yaml", demo_data, root / "runs"))
    outcome = run_search(space, get_task(space.base_config().task))
    return space, outcome, results.write_results(space)


@SLOW
def test_grid_of_two_params_over_two_seeds_completes(finished_grid):
    space, outcome, _ = finished_grid
    assert (outcome.complete, outcome.pruned, outcome.failed, outcome.ran) == (4, 0, 0, 4)
    study = open_study(space, create=False)
    seen = {(t.params["lr"], t.params["augment"]) for t in study.trials}
    assert seen == {(lr, aug) for lr in (0.001, 0.004) for aug in ("[flip]", "[flip, crop]")}
    for trial in study.trials:
        seeds = trial.user_attrs["seeds"]
        assert [s["seed"] for s in seeds] == [0, 1]
        assert seeds[0]["run_dir"] != seeds[1]["run_dir"]  # each seed its own run, one shared split
        assert trial.value == pytest.approx(np.mean([s["val_score"] for s in seeds]))
        assert trial.user_attrs["config"]["augment"] in (["flip"], ["flip", "crop"])


@SLOW
def test_table_has_one_ranked_row_per_configuration_with_a_real_seed_spread(finished_grid):
    space, _, summary = finished_grid
    table = summary.table
    assert len(table) == 4 and list(table["rank"]) == [1, 2, 3, 4]
    assert table["val_mean"].is_monotonic_decreasing
    assert (table["seeds"] == 2).all()
    scores = table["seed_scores"].map(lambda text: [float(v) for v in text.split()])
    np.testing.assert_allclose(table["val_std"], [np.std(s, ddof=1) for s in scores], atol=1e-4)
    assert (table["val_std"] > 0).sum() >= 3  # seeds really differ: this is the noise the verdict uses
    assert table["verdict"].iloc[0] == results.BEST
    for _, row in table.iloc[1:].iterrows():
        spread = max(table["val_std"].iloc[0], row["val_std"])
        expected = results.SAME if table["val_mean"].iloc[0] - row["val_mean"] <= spread else results.WORSE
        assert row["verdict"] == expected
    assert (table["epochs_run"] == 2).all() and table["best_epoch"].between(1, 2).all()
    assert (table["s_per_epoch"] > 0).all() and (table["aug_img_per_s"] > 0).all()
    assert table["tta_gain"].abs().max() < 0.2


@SLOW
def test_results_files_plots_and_markdown(finished_grid):
    space, _, summary = finished_grid
    on_disk = pd.read_csv(summary.csv)
    assert list(on_disk["trial"]) == list(summary.table["trial"])
    assert "not distinguishable" in summary.md.read_text() or results.WORSE in summary.md.read_text()
    assert sum(line.startswith("|") for line in summary.markdown.splitlines()) == 1 + 1 + 4  # header, rule, rows
    for plot in summary.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    assert {p.name for p in summary.plots} == {"metric_per_param.png", "parallel_coordinates.png",
                                               "lr_curves.png"}
    assert summary.conclusions[0].startswith(f"best: trial {summary.table['trial'].iloc[0]}")


@SLOW
def test_exported_best_config_trains(finished_grid, tmp_path):
    space, _, summary = finished_grid
    best = summary.table.iloc[0]
    cfg = load_config(summary.best_config, {"epochs": 1, "runs_dir": str(tmp_path / "final"),
                                            "folds": [0], "verbose": 0})
    assert cfg.lr == best["lr"] and str(cfg.augment).replace("'", "") == best["augment"]
    assert (cfg.val_split, cfg.n_folds, cfg.seed) == (0.0, 5, 42)  # the base's k-fold policy, not the 30% holdout
    result = train_and_evaluate(cfg, get_task(cfg.task), 0)
    assert result.epochs_run == 1 and 0.0 <= result.val_score <= 1.0
    assert (tmp_path / "final" / cfg.run_id / "fold-0" / "best.keras").is_file()


@SLOW
def test_results_verb_prints_the_ranked_table(finished_grid, capsys):
    space, _, summary = finished_grid
    assert main(["results", "--space", str(space.path)]) == 0
    out = capsys.readouterr().out
    assert f"| 1 | {summary.table['trial'].iloc[0]} | complete |" in out
    assert "best config:" in out


def test_verdict_needs_two_seeds_and_compares_with_the_spread():
    table = pd.DataFrame({"state": ["COMPLETE"] * 4, "seeds": [2, 2, 2, 1], "val_mean": [0.80, 0.79, 0.70, 0.5],
                          "val_std": [0.02, 0.005, 0.01, math.nan], "trial": [0, 1, 2, 3]})
    ranked = results.rank(table)
    assert list(ranked["verdict"]) == [results.BEST, results.SAME, results.WORSE, results.ONE_SEED]


def test_a_lower_is_better_metric_ranks_the_lowest_first():
    """A log-loss study: the lowest mean is the best, and the gap to it is measured the same way."""
    table = pd.DataFrame({"state": ["COMPLETE"] * 3, "seeds": [2, 2, 2], "val_mean": [0.70, 0.41, 0.40],
                          "val_std": [0.01, 0.02, 0.005], "trial": [0, 1, 2]})
    ranked = results.rank(table, "min")
    assert list(ranked["trial"]) == [2, 1, 0]
    assert list(ranked["verdict"]) == [results.BEST, results.SAME, results.WORSE]
    assert list(results.rank(table)["trial"]) == [0, 1, 2]  # max: the highest first
