"""CLI verbs of one feature area, kept apart from cli/main.py so each area owns its commands.

Kaggle verbs: submit, kernel, push, status, output. They print; the library modules return or raise.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

from podium.lazy import LazyModule
from podium.errors import PodiumError

# imported on first use: `podium --help` loads none of this
client = LazyModule("podium.kaggle.client")
config = LazyModule("podium.config")
inference = LazyModule("podium.kaggle.inference")
kernel_runs = LazyModule("podium.kaggle.kernel_runs")
kernels = LazyModule("podium.kaggle.kernels")
rehearse = LazyModule("podium.kaggle.rehearse")
submit = LazyModule("podium.kaggle.submit")
tasks = LazyModule("podium.tasks")

AddVerb = Callable[..., argparse.ArgumentParser]


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli/main.py's `verb(name, handler, help, config=True)` helper."""
    sub = verb("submit", _cmd_submit, "validate a run's submission (a code competition: the pushed kernel "
               "version), send it once, log it, wait for the score")
    sub.add_argument("--run", help="run id (folder in runs/); default: the run of --config")
    sub.add_argument("--kernel", help="kernel spec YAML of the pushed kernel (code competitions only)")
    sub.add_argument("--again", action="store_true", help="send again a file that was already submitted")
    sub.add_argument("--no-wait", action="store_true", help="do not wait for the public score")
    sub.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for the score")
    sub.add_argument("--poll-interval", type=float, default=10.0, help="first wait between polls (s)")
    for name, handler, help_ in (
            ("kernel", _cmd_kernel, "render kernels/<slug>/ for a config (and upload its weights dataset)"),
            ("push", _cmd_push, "push the rendered kernel to Kaggle (starts a run)"),
            ("status", _cmd_status, "wait for the pushed kernel run, with backoff; show its final state"),
            ("output", _cmd_output, "download the finished kernel run's outputs into runs/<slug>-v<version>/")):
        sub = verb(name, handler, help_)
        sub.add_argument("--kernel", help="kernel spec YAML (accelerator, is_private, enable_internet, ...)")
        if name == "status":
            sub.add_argument("--timeout", type=float, default=6 * 3600.0, help="seconds to wait")
            sub.add_argument("--poll-interval", type=float, default=15.0, help="first wait between polls (s)")
        if name == "kernel":
            sub.add_argument("--no-upload", action="store_true",
                             help="render only; do not upload the weights or run dataset")
    sub = verb("rehearse", _cmd_rehearse, "run the rendered inference kernel here as Kaggle would: offline, "
               "podium only from the script, on the test images under new ids")
    sub.add_argument("--kernel", help="kernel spec YAML (mode: inference)")
    sub.add_argument("--labels", help="held-back test labels CSV (id,label) to score the submission against")
    sub.add_argument("--allow-network", action="store_true",
                     help="rehearse with network where `unshare -n` is not permitted (proves less)")
    sub.add_argument("--timeout", type=float, default=3600.0, help="seconds the script may run")


def _session():
    return client.KaggleSession()  # logs credential warnings (world-readable kaggle.json) to stderr


def _config(args):
    return config.load_config(args.config, args.overrides)


def _cmd_submit(args) -> None:
    started = time.perf_counter()
    if args.run:
        cfg = submit.run_config(args.run)
        folder = Path("kernels") / kernels.load_kernel_spec(args.kernel).resolved_slug(cfg)
    else:
        cfg, _, folder = _kernel_folder(args)
    target = submit.choose_target(cfg, folder, kernel_named=bool(args.kernel))
    if target.kernel:
        print(f"submit: kernel {target.kernel.ref} version {target.kernel.version} -> {target.competition.slug} "
              "(code competition: Kaggle re-runs it on the hidden test set and scores its submission.csv)")
    else:
        print(f"submit: {target.file} -> {target.competition.slug} (validating first)")
    poll = submit.PollPolicy(timeout=args.timeout, interval=args.poll_interval)
    task = tasks.get_task(target.competition.task)  # the competition's task: it validates the CSV
    result = submit.submit(target, task, _session(), poll, again=args.again, wait=not args.no_wait)
    for event in result.events:
        print(f"submit: {event}")
    print(f"submit: message '{result.message}'")
    score = f", public score {result.public_score}" if result.public_score else ""
    print(f"submit: status {result.status}{score} (logged in {target.submissions_dir / 'log.csv'}; "
          f"{time.perf_counter() - started:.1f} s)")
    if result.status in ("pending", "submitted") and not args.no_wait:
        rerun = " (a code submission is scored after Kaggle re-runs the kernel: that can take hours)" \
            if target.kernel else ""
        print(f"submit: not scored yet; run the same command again to keep waiting (nothing is re-sent){rerun}")
    if result.status == "error":
        fix = ("read the kernel's log (make output), fix the kernel, make push, make status, make submit" if
               target.kernel else "check the CSV against the competition's rules, then make submit --again")
        raise PodiumError(f"Kaggle could not score submission {result.ref} to '{target.competition.slug}'.",
                          expected="a public score", received=result.error or "status ERROR", fix=fix)


def _kernel_folder(args) -> tuple:
    cfg = _config(args)
    spec = kernels.load_kernel_spec(args.kernel)
    return cfg, spec, Path("kernels") / spec.resolved_slug(cfg)


def _cmd_kernel(args) -> None:
    cfg, spec, _ = _kernel_folder(args)
    uploads = not args.no_upload and (spec.weights_file or (spec.mode == "inference" and spec.run_source == "dataset"))
    session = None if (spec.owner and not uploads) else _session()
    rendered = kernels.render_kernel(cfg, tasks.get_task(cfg.task), spec, owner=spec.owner or session.username)
    meta = rendered.metadata
    print(f"kernel: {rendered.folder}/ ({rendered.ref}, {spec.mode}, {meta.get('machine_shape', 'no accelerator')}, "
          f"internet {'on' if meta['enable_internet'] else 'off'}, private {meta['is_private']})")
    if rendered.weights_dataset is not None and not args.no_upload:
        ref = kernel_runs.publish_weights(session, rendered.weights_dataset)
        print(f"kernel: weights dataset {ref} uploaded" if ref else "kernel: weights dataset unchanged")
    if rendered.run_dataset is not None:
        name = json.loads((rendered.run_dataset / "dataset-metadata.json").read_text())["id"]
        print(f"kernel: run {cfg.run_id} packaged in {rendered.run_dataset}/ (dataset {name})")
        for note in inference.package_notes(rendered.run_dataset / cfg.run_id):
            print(f"kernel: note: {note}")
        if args.no_upload:
            print("kernel: not uploaded (--no-upload); make rehearse runs it here offline")
        else:
            ref = kernel_runs.publish_dataset(session, rendered.run_dataset, notes=f"podium run {cfg.run_id}")
            print(f"kernel: run dataset {ref} uploaded" if ref else "kernel: run dataset unchanged, not uploaded")
    elif meta.get("kernel_sources"):
        print(f"kernel: the run is read from kernel {', '.join(meta['kernel_sources'])}'s output (runs/{cfg.run_id}/)")


def _cmd_rehearse(args) -> None:
    cfg, _, folder = _kernel_folder(args)
    print(f"rehearse: {folder}/podium_kernel.py offline on the test images under new ids ...", flush=True)
    summary = rehearse.rehearse(cfg, tasks.get_task(cfg.task), folder, labels=args.labels, allow_network=args.allow_network, timeout=args.timeout)
    print("\n".join(f"  | {line}" for line in summary.log.rstrip().splitlines()[-40:]))
    print(f"rehearse: network {summary.network}")
    print(f"rehearse: podium imported from {summary.podium_file or '(not printed)'} "
          f"({'the inlined copy' if summary.inlined else 'NOT the inlined copy'})")
    print(f"rehearse: exit {summary.returncode}, wall {summary.wall_seconds:.1f} s, {summary.n_rows} rows for "
          f"{summary.n_test} renamed test images, ids match the rebuilt sample: {summary.ids_match}")
    if args.labels:
        print(f"rehearse: {rehearse.accuracy_line(summary, args.labels)}")
    if summary.returncode == 0:
        for line in rehearse.projection_lines(summary.projection):
            print(f"rehearse: {line}")
    print(f"rehearse: summary {summary.folder / 'rehearsal.json'}, log {summary.folder / 'kernel.log'}")
    if not summary.ok:
        raise PodiumError("The rehearsal failed.", expected="exit 0, podium from the inlined copy, a valid "
                          "submission for the new ids", received=f"exit {summary.returncode}; inlined "
                          f"{summary.inlined}; ids match {summary.ids_match}; problems {summary.problems[:3]}",
                          fix=f"read {summary.folder / 'kernel.log'}")


def _cmd_push(args) -> None:
    _, _, folder = _kernel_folder(args)
    state = kernel_runs.push(_session(), folder)
    if state.get("adopted"):  # a push whose answer was lost did start this run
        print(f"push: the answer to the push (token {state['token']}) was lost, but Kaggle has it: "
              f"{state['ref']} version {state['version']}; nothing was sent again")
    else:
        print(f"push: {state['ref']} version {state['version']} started (token {state['token']}): {state['url']}")
    print("push: make status EXP=... waits for it")


def _cmd_status(args) -> None:
    _, _, folder = _kernel_folder(args)

    def progress(state, elapsed: float) -> None:
        print(f"status: {state.ref} v{state.version}: {state.status} ({elapsed:.0f} s)", flush=True)

    policy = kernel_runs.StatusPolicy(timeout=args.timeout, interval=args.poll_interval)
    state = kernel_runs.wait_for_kernel(_session(), folder, policy, on_progress=progress)
    if not state.finished:
        print(f"status: still {state.status} after {args.timeout:.0f} s; run make status again")
    elif state.failed:  # exit 2 via PodiumError: a failed GPU run must not look like success to make or CI
        raise PodiumError(f"Kernel {state.ref} version {state.version} ended {state.status}.",
                          expected="COMPLETE", received=state.failure or "no message from Kaggle",
                          fix="make output EXP=... fetches its log (kernel.log); fix the cause, then make push")
    else:
        print(f"status: {state.ref} v{state.version} COMPLETE; make output downloads its files")


def _cmd_output(args) -> None:
    cfg, _, folder = _kernel_folder(args)
    summary = kernel_runs.download_output(_session(), folder, cfg.runs_dir)
    print(f"output: {len(summary.files)} file(s) -> {summary.run_dir}/")
    if summary.run_record:
        print(f"output: run {summary.run_record.get('run_id')} cv {summary.run_record.get('cv_mean')}")
