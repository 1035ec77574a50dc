"""CLI verbs of the data-quality area: dups, audit, eda. Handlers print; the work is in
data/duplicates.py (with perceptual_hash.py, hash_search.py), data/dup_quality.py, data/audit.py and data/eda.py."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from podium.lazy import LazyModule
from podium.data.hash_search import DEFAULT_THRESHOLD
from podium.errors import PodiumError

# imported on first use: `podium --help` loads none of this
advice = LazyModule("podium.data.advice")
competitions = LazyModule("podium.data.competitions")
config = LazyModule("podium.config")
data_audit = LazyModule("podium.data.audit")
data_eda = LazyModule("podium.data.eda")
dup_quality = LazyModule("podium.data.dup_quality")
duplicates = LazyModule("podium.data.duplicates")
folds = LazyModule("podium.data.folds")
index = LazyModule("podium.data.index")
io = LazyModule("podium.io")
podium_spec = LazyModule("podium.spec")
source = LazyModule("podium.kaggle.source")
sources = LazyModule("podium.data.sources")
synthetic_files = LazyModule("podium.experiments.synthetic_files")
tasks = LazyModule("podium.tasks")

if TYPE_CHECKING:
    # the annotation only; podium.data.sources loads the competition specs' metric registry (sklearn)
    from podium.data.sources import Source

AddVerb = Callable[..., argparse.ArgumentParser]


def data_sources() -> dict[str, Source]:
    """Where `make data` (and `make run`) fetch a competition from, by its spec's `source:` name: chosen here,
    at the entry point, and handed down (podium.data.sources), so data/ imports no Kaggle client or generator."""
    return {**sources.LOCAL, "generated": synthetic_files.GENERATED_SOURCE, "kaggle": source.KAGGLE_SOURCE}


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli/main.py's `verb(name, handler, help, config=True)` helper."""
    dups = verb("dups", _cmd_dups, "group exact and near-duplicate images (perceptual hash) into the index's "
                                   "group column; report train<->test copies")
    _where(dups)
    dups.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                      help=f"max Hamming distance of 64-bit hashes (default {DEFAULT_THRESHOLD})")
    dups.add_argument("--mirrored", action="store_true", help="also match horizontally flipped copies")
    dups.add_argument("--force", action="store_true", help="hash every image again, ignoring the cache")
    dups.add_argument("--tiles", type=int, default=0, metavar="GRID",
                      help="also join images sharing a piece of one scene, matched on a GRID x GRID of blocks "
                           "(3 for Airbus' 768 px tiles in 256 px steps); 0: off")
    dups.add_argument("--tile-min-blocks", type=int, default=2,
                      help="blocks that must match at one offset to join two tiles (default 2)")
    dups.add_argument("--benchmark", action="store_true",
                      help="measure the detector instead: plant transformed copies among this competition's "
                           "train images, report precision/recall per transform")
    dups.add_argument("--per-transform", type=int, default=100, help="copies planted per transform (--benchmark)")
    audit = verb("audit", _cmd_audit, "fail loudly if the saved split puts copies of one image in different "
                                      "folds; PNG gallery of the pairs")
    _where(audit)
    audit.add_argument("--split", help="split CSV (id, fold) to check (default: the config's saved split)")
    audit.add_argument("--threshold", type=int, help="default: the one the last `dups` used")
    audit.add_argument("--mirrored", action="store_true", help="also count mirrored copies as leaks")
    audit.add_argument("--tiles", type=int, help="also count overlapping tiles (GRID x GRID blocks) as leaks; "
                                                 "default: what the last `dups` used")
    eda = verb("eda", _cmd_eda, "data report: class counts, sizes, channel stats, odd files, duplicates, samples")
    _where(eda)
    eda.add_argument("--out", help="output folder (default: data/<slug>/eda)")
    eda.add_argument("--sample", type=int, default=2000, help="images decoded for channel statistics")
    spec = verb("spec", _cmd_spec, "draft a competition spec from a folder of downloaded files, then check it "
                                   "(an existing spec is checked, never overwritten without --force)", config=False)
    spec.add_argument("--source", help="folder holding the competition's files as downloaded (zips, CSVs, folders)")
    spec.add_argument("--out", help="spec YAML to write (default: configs/competitions/<slug>.yaml)")
    spec.add_argument("--slug", help="the Kaggle competition slug (default: the source folder's name)")
    spec.add_argument("--force", action="store_true", help="draft over an existing spec file")


def _where(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--competition", "-C", help="competition slug or spec (default: the config's)")


def _data_root(args) -> tuple[object, Path]:
    cfg = config.load_config(args.config, args.overrides)
    slug = competitions.load_competition(args.competition or cfg.competition).slug
    return cfg, Path(cfg.data_dir) / slug


def _cmd_dups(args) -> None:
    cfg, root = _data_root(args)
    if args.benchmark:
        return _benchmark(root, args)

    result = duplicates.run_dups(root, args.threshold, args.mirrored, force=args.force, progress=True, tiles=args.tiles,
                      tile_min_blocks=args.tile_min_blocks)
    s = result.summary
    print(f"dups: {s.hashed} of {s.images} images hashed ({s.flat} too flat to hash, grouped by bytes only), "
          f"threshold {result.threshold}{', mirrored' if result.mirrored else ''}, {result.seconds:.1f} s")
    if result.tiles:
        print(f"dups: {result.tile_pairs} image pairs share a piece of one scene ({result.tiles}x{result.tiles} "
              f"blocks, >= {args.tile_min_blocks} at one offset)")
    print(f"dups: {s.exact_groups} groups of byte-identical files ({s.exact_images} images); "
          f"{s.groups} duplicate groups in all ({s.grouped_images} images), largest {s.largest_group}")
    if s.largest_group > max(50, s.images // 100):
        print(f"dups: WARNING the largest group holds {s.largest_group} of {s.images} images: a loose --threshold "
              f"(or --tile-min-blocks 1) chains unrelated images together, and one group cannot be split across "
              f"folds. Look at its images (the index's group column) before trusting the folds.")
    if s.label_conflicts:
        print(f"dups: {s.label_conflicts} groups hold train images with different labels (label noise? see the "
              f"index's group column)")
    print(f"dups: {result.test_with_train_copies} test images have a copy in train ({result.train_test_path}); "
          f"{result.pseudo_labeled} pseudo-label suggestions where the copies agree ({result.pseudo_labels_path})")
    print(f"dups: groups written to {result.index_path}")
    if s.changed:
        print("dups: the groups CHANGED: splits made before now may put copies in different folds. Rebuild with "
              "`make folds FORCE=1` (and check with `make audit`).")
        for path in result.stale_splits:
            print(f"  stale: {path}")
    else:
        print("dups: groups unchanged: existing splits stay valid")


def _benchmark(root: Path, args) -> None:
    rows = folds.labeled_rows(index.load_index(root / "index.parquet"))
    result = dup_quality.measure_detector([root / p for p in rows["path"]], args.threshold, args.per_transform,
                              mirrored=args.mirrored, progress=True)
    out = duplicates.duplicates_dir(root)
    text = result.markdown() + "\nby threshold (recall / precision):\n\n" + result.scan_markdown()
    io.write_text(out / "quality.md", text)
    io.write_json(out / "quality.json", {"threshold": result.threshold, "mirrored": result.mirrored,
                                      "background": result.background, "per_transform": result.per_transform,
                                      "table": result.table.to_dict(orient="records"),
                                      "scan": result.scan.to_dict(orient="records")})
    print(text)
    verdict = "met" if result.meets_target() else "NOT met"
    print(f"dups benchmark: target (recall >= 0.98 at precision >= 0.99 for resize, recompress, brightness) "
          f"{verdict}; written to {out / 'quality.md'}")


def _cmd_audit(args) -> None:
    cfg, root = _data_root(args)
    path = Path(args.split) if args.split else folds.split_path(root, cfg.n_folds, cfg.val_split, cfg.split_seed)
    saved_threshold, saved_mirrored = duplicates.dups_settings(root)
    saved_tiles, min_blocks = duplicates.dups_tiles(root)
    threshold = saved_threshold if args.threshold is None else args.threshold
    mirrored = args.mirrored or saved_mirrored
    tiles = saved_tiles if args.tiles is None else args.tiles
    report = data_audit.audit_split(index.load_index(root / "index.parquet"), data_audit.read_split(path), root, path, threshold, mirrored,
                         progress=True, tiles=tiles, tile_min_blocks=min_blocks)
    print(f"audit: {report.split_path}: clean: no duplicate pair across its {report.folds} folds "
          f"({report.images} images, threshold {report.threshold}{', mirrored' if report.mirrored else ''}"
          f"{f', overlapping {tiles}x{tiles} tiles' if tiles else ''}; "
          f"{report.duplicate_pairs_within_folds} duplicate pairs, all within one fold"
          f"{f'; {report.groups} groups of {report.group_column}, each within one fold' if report.group_column else ''})")


def _cmd_eda(args) -> None:
    _, root = _data_root(args)
    result = data_eda.make_eda(index.load_index(root / "index.parquet"), root, Path(args.out) if args.out else None, args.sample)
    classes = result.summary["classes"]
    print(f"eda: {classes['images']} train images in {classes['classes']} classes, largest {classes['largest']}, "
          f"smallest {classes['smallest']}, imbalance ratio {classes['imbalance_ratio']:.2f}")
    channels = result.summary["channels"]
    print(f"eda: channel mean {channels['mean']} std {channels['std']} (0..255, {channels['images']} images)")
    for note in result.summary["set_notes"]:
        print(f"eda: {note}")
    print(f"eda: {result.summary['odd_files']} odd or unreadable files ({result.summary['unreadable']} unreadable); "
          f"duplicates: {result.summary['duplicates']['groups']} groups")
    print(f"eda: report in {result.out_dir / 'summary.md'} (+ {len(result.files) - 1} files)")


def _cmd_spec(args) -> None:
    if not args.source:
        raise PodiumError("`podium spec` needs the folder of downloaded files.", expected="--source <folder>",
                          received="no --source", fix="make spec SRC=<folder with the competition's files>")
    _print_slug(args)
    out = Path(args.out) if args.out else podium_spec.default_out(args.source, args.slug)
    if out.exists() and not args.force:
        print(f"spec: {out} exists: checking it against {args.source} (FORCE=1 drafts a new one over it)")
    else:
        draft = podium_spec.draft_spec(args.source, args.slug)
        podium_spec.write_draft(draft, out, force=args.force)
        found = draft.values
        how = {"csv": f"labels CSV {found.get('labels_csv')} ({found.get('id_column')} -> "
                      f"{found.get('label_column') or found.get('rle_column')})",
               "pixels": f"images as pixel columns of {found.get('labels_csv')} (label {found.get('label_column')}) "
                         f"and {found.get('test_csv')}, image_shape {found.get('image_shape')}",
               "filename": f"labels in the file names in {found.get('train_dir')}/ "
                           f"({draft.notes.get('layout', '').rpartition(': ')[2]})",
               }.get(found["layout"], f"a folder per class in {found.get('train_dir')}/")
        test = f"test images in {found['test_dir']}/, " if "test_dir" in found else ""
        ids = (f" (ids are file {'names' if found['submission_id'] == 'filename' else 'stems'})"
               if "submission_id" in found else "")
        print(f"spec: drafted {out}: task {found['task']}, {how}, {test}"
              f"submission {found['submission_id_column']},{found['submission_label_column']}{ids}")
        print(f"spec: images: {draft.images['summary']}")
        if draft.images.get("advice"):
            print(f"spec: {draft.images['advice']}")
    spec = competitions.load_competition(str(out))
    check = podium_spec.check_spec(spec, tasks.get_task(spec.task), args.source)  # the spec's task, resolved here
    for note in check.notes:
        print(f"spec: note: {note}")
    for number, problem in enumerate(check.problems, start=1):
        print(f"spec: problem {number}: {problem}")
    if not check.ok:
        raise PodiumError(f"The competition spec {out} does not fit the files in {args.source} "
                          f"({len(check.problems)} problem(s) listed above).", expected="no problems",
                          received=f"{len(check.problems)}",
                          fix=f"edit {out}, then check it again: make spec SRC={args.source} OUT={out}")
    classes = f" in {len(check.classes)} classes" if check.classes else ""
    print(f"spec: checked: `make data` would index {check.n_train} train images{classes} and {check.n_test} test "
          f"images. Next: make data COMP={out} SRC={args.source}; then `competition: {out}` in the experiment config")


KAGGLE_SLUG = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")  # what a kaggle.com/competitions/<slug> URL holds


def _print_slug(args) -> None:
    """The slug names data/<slug>/, the spec file and what `make data` downloads: say which one is used and
    how to set it; refuse one Kaggle would not have."""
    if args.slug is not None and not KAGGLE_SLUG.fullmatch(args.slug):
        raise PodiumError("SLUG is not a Kaggle competition slug.",
                          expected="lowercase letters, digits and single hyphens, as in "
                                   "kaggle.com/competitions/<slug> (e.g. dog-breed-identification)",
                          received=repr(args.slug), fix=f"make spec SRC={args.source} SLUG="
                                                       f"{re.sub(r'[^a-z0-9]+', '-', args.slug.lower()).strip('-')}")
    if args.slug is None:
        folder = Path(args.source).resolve().name
        print(f"spec: slug '{podium_spec.default_out(args.source).stem}' (from the folder name '{folder}'): if the competition's URL "
              f"(kaggle.com/competitions/<slug>) says otherwise, set it: make spec SRC={args.source} SLUG=<slug> "
              "(podium spec --slug <slug>)")
    else:
        print(f"spec: slug '{args.slug}'")


def print_advice(cfg) -> None:
    """The config-vs-data warnings of podium.data.advice, printed at folds, train and run (never fatal)."""
    for warning in advice.index_warnings(cfg):
        print(f"advice: {warning}")
