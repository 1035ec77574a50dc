"""CLI verbs of one feature area, kept apart from cli.py so each area owns its commands.

Kaggle verbs: submit, kernel, push, status, output. They print; the library modules return or raise.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

AddVerb = Callable[..., argparse.ArgumentParser]


def add_verbs(verb: AddVerb) -> None:
    """Register this area's verbs with cli.py's `verb(name, handler, help, config=True)` helper."""
    sub = verb("submit", _cmd_submit, "validate a run's submission, send it once, log it, wait for the score")
    sub.add_argument("--run", help="run id (folder in runs/); default: the run of --config")
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
            sub.add_argument("--no-upload", action="store_true", help="render only; do not upload weights")


def _session():
    from podium.kaggle_api import KaggleSession

    return KaggleSession()  # logs credential warnings (world-readable kaggle.json) to stderr


def _config(args):
    from podium.config import load_config

    return load_config(args.config, args.overrides)


def _cmd_submit(args) -> None:
    from podium.submit import PollPolicy, resolve_target, submit

    started = time.perf_counter()
    target = resolve_target(run_id=args.run, cfg=None if args.run else _config(args))
    print(f"submit: {target.file} -> {target.competition.slug} (validating first)")
    poll = PollPolicy(timeout=args.timeout, interval=args.poll_interval)
    result = submit(target, _session(), poll, again=args.again, wait=not args.no_wait)
    for event in result.events:
        print(f"submit: {event}")
    print(f"submit: message '{result.message}'")
    score = f", public score {result.public_score}" if result.public_score else ""
    print(f"submit: status {result.status}{score} (logged in {target.submissions_dir / 'log.csv'}; "
          f"{time.perf_counter() - started:.1f} s)")
    if result.status == "pending":
        print("submit: not scored yet; run the same command again to keep waiting (nothing is re-sent)")


def _kernel_folder(args) -> tuple:
    from podium.kernels import load_kernel_spec

    cfg = _config(args)
    spec = load_kernel_spec(args.kernel)
    return cfg, spec, Path("kernels") / spec.resolved_slug(cfg)


def _cmd_kernel(args) -> None:
    from podium.kernel_runs import publish_weights
    from podium.kernels import render_kernel

    cfg, spec, _ = _kernel_folder(args)
    session = None if (spec.owner and (args.no_upload or not spec.weights_file)) else _session()
    rendered = render_kernel(cfg, spec, owner=spec.owner or session.username)
    meta = rendered.metadata
    print(f"kernel: {rendered.folder}/ ({rendered.ref}, {meta.get('machine_shape', 'no accelerator')}, "
          f"internet {'on' if meta['enable_internet'] else 'off'}, private {meta['is_private']})")
    if rendered.weights_dataset is not None and not args.no_upload:
        ref = publish_weights(session, rendered.weights_dataset)
        print(f"kernel: weights dataset {ref} uploaded" if ref else "kernel: weights dataset unchanged")


def _cmd_push(args) -> None:
    from podium.kernel_runs import push

    _, _, folder = _kernel_folder(args)
    state = push(_session(), folder)
    print(f"push: {state['ref']} version {state['version']} started: {state['url']}")
    print("push: make status EXP=... waits for it")


def _cmd_status(args) -> None:
    from podium.kernel_runs import StatusPolicy, wait_for_kernel

    _, _, folder = _kernel_folder(args)

    def progress(state, elapsed: float) -> None:
        print(f"status: {state.ref} v{state.version}: {state.status} ({elapsed:.0f} s)", flush=True)

    policy = StatusPolicy(timeout=args.timeout, interval=args.poll_interval)
    state = wait_for_kernel(_session(), folder, policy, on_progress=progress)
    if not state.finished:
        print(f"status: still {state.status} after {args.timeout:.0f} s; run make status again")
    elif state.status == "COMPLETE":
        print(f"status: {state.ref} v{state.version} COMPLETE; make output downloads its files")
    else:
        print(f"status: {state.ref} v{state.version} {state.status}: {state.failure or 'no message'}")


def _cmd_output(args) -> None:
    from podium.kernel_runs import download_output

    cfg, _, folder = _kernel_folder(args)
    summary = download_output(_session(), folder, cfg.runs_dir)
    print(f"output: {len(summary.files)} file(s) -> {summary.run_dir}/")
    if summary.run_record:
        print(f"output: run {summary.run_record.get('run_id')} cv {summary.run_record.get('cv_mean')}")
