"""``python -m benchmarks run [--quick | --smoke] [--only SCENARIO]``: Jobline against Job and CronJob.

Starts its own control plane with kwok nodes in a temp workdir, runs each scenario for Jobline and
then for the peer, writes ``benchmarks/results/<date>.json`` and the table in ``benchmarks/README.md``,
and stops everything it started (its children die with it even on ``kill -9``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from tests.kube import Api, Bulk, install_crds

from . import env as benv
from .report import targets, write_json, write_readme
from .scenarios import NUMBERS, SCENARIOS, SIZES, Ctx, combine_ceiling

HERE = Path(__file__).resolve().parent


def _log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run the benchmarks")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes, under 10 minutes")
    size.add_argument(
        "--smoke", action="store_true", help="tiny sizes, for the test suite (numbers mean nothing)"
    )
    r.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"run only this scenario (repeatable): {', '.join(f'{NUMBERS[k]}/{k}' for k in SCENARIOS)}",
    )
    r.add_argument("--out-dir", type=Path, default=HERE / "results", help="where <date>.json goes")
    r.add_argument("--readme", type=Path, default=HERE / "README.md", help="the Markdown file with the table")
    r.add_argument("--kwok-nodes", type=int, default=4)
    r.add_argument(
        "--peer-limits",
        choices=sorted(benv.PEERS),
        default="both",
        help="run the Job controller at kube-controller-manager's client defaults, with its limits raised "
        f"({' '.join(benv.RAISED_LIMITS)}), or both (default; the controller-manager is restarted between)",
    )
    r.add_argument("--no-profile", action="store_true", help="do not attach py-spy to the operator")
    r.add_argument("--keep-workdir", action="store_true", help="keep the cluster's and operator's logs")
    return p.parse_args(argv)


def _selected(only: list[str]) -> list[str]:
    if not only:
        return list(SCENARIOS)
    by_number = {v: k for k, v in NUMBERS.items()}
    wanted = set()
    for item in only:
        for part in item.split(","):
            name = by_number.get(part.strip(), part.strip())
            if name not in SCENARIOS:
                raise SystemExit(f"unknown scenario {part!r}; choose from {', '.join(SCENARIOS)} or 1-5")
            wanted.add(name)
    return [k for k in SCENARIOS if k in wanted]


def run(args: argparse.Namespace) -> int:
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    sizes = SIZES[mode]
    selected = _selected(args.only)
    started = time.monotonic()
    command = "python -m benchmarks " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    meta: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "mode": mode,
        "command": command,
        "sizes": sizes.__dict__,
        "kwok_nodes": args.kwok_nodes,
        "peer_limits": args.peer_limits,
        "raised_limits": benv.RAISED_LIMITS,
        "machine": benv.machine(),
        "loadavg_before": benv.loadavg(),
    }
    _log(f"benchmarks ({mode}): {', '.join(selected)}; load average {meta['loadavg_before']}")
    cluster = benv.ClusterEnv(kwok_nodes=args.kwok_nodes)
    meta["versions"] = benv.versions(cluster.bin_dir)
    scenarios: dict[str, Any] = {}
    bulk: Bulk | None = None
    failed = False
    try:
        meta["cluster_start_s"] = round(cluster.start(), 1)
        _log(f"cluster up in {meta['cluster_start_s']}s ({cluster.workdir})")
        install_crds(cluster.kubeconfig, benv.REPO / "crds")
        api = Api(cluster.kubeconfig)
        bulk = Bulk(cluster.kubeconfig)
        ctx = Ctx(
            env=cluster,
            api=api,
            bulk=bulk,
            sizes=sizes,
            workdir=cluster.workdir / "bench",
            log=_log,
            profile=not args.no_profile,
            peers=tuple(benv.PEERS[args.peer_limits]),
        )
        ctx.workdir.mkdir(parents=True, exist_ok=True)
        for name in selected:
            _log(f"scenario {NUMBERS[name]}: {name}")
            t0 = time.monotonic()
            try:
                scenarios[name] = SCENARIOS[name](ctx)
            except Exception as exc:
                failed = True
                scenarios[name] = {
                    "error": f"{type(exc).__name__}: {exc}",
                    "traceback": traceback.format_exc(),
                }
                _log(f"  failed: {exc}")
            scenarios[name]["duration_s"] = round(time.monotonic() - t0, 1)
    except BaseException:
        failed = True
        raise
    finally:
        if bulk is not None:
            bulk.close()
        cluster.stop(keep_logs=args.keep_workdir or failed)
        if args.keep_workdir or failed:
            _log(f"logs kept in {cluster.workdir}")
    combine_ceiling(scenarios)
    meta["duration_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_after"] = benv.loadavg()
    doc = {"meta": meta, "scenarios": scenarios}
    doc["targets"] = targets(doc)
    path = write_json(doc, args.out_dir)
    write_readme(doc, args.readme)
    _log(f"wrote {path} and the table in {args.readme}; took {meta['duration_s'] / 60:.1f} min")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    os.environ.pop("KUBECONFIG", None)
    if args.cmd == "run":
        return run(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
