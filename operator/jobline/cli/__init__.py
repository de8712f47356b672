"""``kubectl jobline``: operate Jobline from the command line (a kubectl plugin: ``kubectl-jobline``).

Honours the kubeconfig (``--kubeconfig``, ``$KUBECONFIG``, ``~/.kube/config``, else in-cluster),
``--context``, ``-n``/``--namespace`` and ``-A``/``--all-namespaces`` like kubectl. Exit codes:
0 ok, 1 failed (a failed job, an API error, a bulk action with failures), 2 usage (bad flags, bad
JSON, bad values), 3 not found, 4 forbidden/unauthorized, 5 timed out.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from jobline.core.models import DEFAULT_QUEUE

from .connection import EXIT_FAILED, EXIT_USAGE, CliError, Connection

__all__ = ["build_parser", "main"]

EPILOG = """\
examples:
  kubectl jobline enqueue send-email --payload '{"to": "a@example.com"}' --queue mail --wait
  kubectl jobline list -A --phase Failed
  kubectl jobline retry --all-failed --queue mail
  kubectl jobline cleanup --finished --older-than 7d --dry-run
  kubectl jobline suspend queue/mail
  kubectl jobline wait report-x7k2q && kubectl jobline logs report-x7k2q --attempt 1

exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 forbidden, 5 timed out
"""


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """kubectl's connection flags; accepted before and after the command."""
    default: Any = argparse.SUPPRESS if suppress else None
    g = parser.add_argument_group("connection (as kubectl)")
    g.add_argument(
        "--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    g.add_argument("--context", default=default, help="kubeconfig context to use")
    g.add_argument("-n", "--namespace", default=default, help="namespace (default: the context's)")
    g.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="every namespace (list, stats, retry --all-failed, cleanup)",
    )
    g.add_argument("--as", dest="as_user", default=default, help="user to impersonate")
    g.add_argument("--as-group", dest="as_group", default=default, help="group to impersonate")
    g.add_argument("--token", default=default, help="bearer token (instead of the kubeconfig's credentials)")
    g.add_argument(
        "--request-timeout",
        type=float,
        default=argparse.SUPPRESS if suppress else 30.0,
        help="seconds per API call (default 30)",
    )


def _output(parser: argparse.ArgumentParser, choices: tuple[str, ...] = ("json", "yaml")) -> None:
    parser.add_argument("-o", "--output", choices=choices, help="print as " + " or ".join(choices))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl jobline",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _common(p, suppress=True)
        return p

    p = cmd("enqueue", "create a QueuedJob")
    p.add_argument("handler", metavar="HANDLER")
    p.add_argument("--payload", help="JSON text, @FILE or @- (stdin)")
    p.add_argument("--queue", default=DEFAULT_QUEUE, help=f"queue (default: {DEFAULT_QUEUE})")
    p.add_argument("--priority", type=int, help="higher runs first")
    p.add_argument("--run-at", help="not before this RFC 3339 time, or +DURATION (e.g. +10m)")
    p.add_argument("--unique-key", help="at most one unfinished job per queue and key")
    p.add_argument("--name", help="job name (default: generated from the handler)")
    p.add_argument("--wait", action="store_true", help="then wait for it like `wait`")
    p.add_argument("--timeout", help="with --wait: give up after this long (e.g. 10m)")
    _output(p)

    p = cmd("stats", "a table of job counts per queue")
    _output(p)

    p = cmd("list", "list QueuedJobs")
    p.add_argument("--queue")
    p.add_argument(
        "--phase",
        action="append",
        help="Pending, Waiting, Running, Suspended, Succeeded, Failed, Cancelled, Superseded (repeatable or "
        "comma-separated)",
    )
    p.add_argument("--handler")
    _output(p, ("json", "yaml", "name"))

    p = cmd("retry", "requeue finished jobs (a fresh retry budget)")
    p.add_argument("jobs", nargs="*", metavar="JOB")
    p.add_argument("--all-failed", action="store_true", help="every dead-lettered job in scope")
    p.add_argument("--queue", help="with --all-failed: only this queue")
    p.add_argument("--dry-run", action="store_true", help="say what would be requeued")

    p = cmd("cancel", "cancel jobs: a running attempt is stopped (SIGTERM), the job ends Cancelled")
    p.add_argument("jobs", nargs="+", metavar="JOB")

    p = cmd("cleanup", "delete finished jobs older than a duration")
    p.add_argument(
        "--finished",
        action="store_true",
        help="required: finished (Succeeded/Failed/Cancelled/Superseded) jobs",
    )
    p.add_argument("--older-than", default="7d", help="finished longer ago than this (default 7d)")
    p.add_argument("--phase", action="append", help="only these finished phases (repeatable)")
    p.add_argument("--queue")
    p.add_argument("--dry-run", action="store_true", help="list them, delete nothing")
    _output(p)

    p = cmd("trigger", "run a JobSchedule now")
    p.add_argument("schedule", metavar="SCHEDULE")
    p.add_argument("--wait", action="store_true", help="wait for the run's QueuedJob and print its name")
    p.add_argument("--timeout", default="60s", help="with --wait (default 60s)")

    for verb, what in (
        ("suspend", "suspend a schedule or job, pause a queue"),
        ("resume", "resume a schedule, job or queue"),
    ):
        p = cmd(verb, what)
        p.add_argument("targets", nargs="+", metavar="KIND/NAME", help="schedule/NAME, queue/NAME or qj/NAME")

    p = cmd("wait", "wait for a job to finish, showing its progress; exit 1 if it fails")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--timeout", help="give up after this long (e.g. 10m; default: no limit), exit 5")

    p = cmd("logs", "print a job attempt's worker log")
    p.add_argument("job", metavar="JOB")
    p.add_argument("--attempt", type=int, help="attempt number (default: the latest)")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("--tail", type=int, help="last N lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    from .commands import COMMANDS, Io

    parser = build_parser()
    args = parser.parse_args(argv)
    io = Io()
    conn = Connection(
        kubeconfig=args.kubeconfig,
        context=args.context,
        namespace=args.namespace,
        all_namespaces=args.all_namespaces,
        as_user=args.as_user,
        as_group=args.as_group,
        token=args.token,
        request_timeout=args.request_timeout,
    )
    if conn.all_namespaces and args.command not in ("list", "stats", "retry", "cleanup"):
        io.warn(f"error: -A does not apply to {args.command}")
        return EXIT_USAGE
    if conn.all_namespaces and args.command == "retry" and not args.all_failed:
        io.warn("error: -A goes with retry --all-failed")
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args, conn, io)
    except CliError as exc:
        io.warn(f"error: {exc.message}")
        return exc.code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # urllib3 connection errors and the like: one line, not a traceback
        if type(exc).__module__.startswith(("urllib3", "kubernetes")):
            io.warn(f"error: cannot talk to the API server: {exc}")
            return EXIT_FAILED
        raise


if __name__ == "__main__":
    sys.exit(main())
