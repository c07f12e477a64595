"""`actverify fuzz`: fuzz the property suite for a time budget, in parallel, and shard it
across CI jobs.

    actverify fuzz --minutes 30 --workers 4 --shard 2/4 --db redis://ci-cache:6379/0
    python -m actverify.fuzz --minutes 5 --target kernels.py:sigmoid=sigmoid -- -k accuracy

This module is the command line (also `actverify fuzz`, through add_arguments and run_args);
the rounds, the records their pytest processes write and the sharding options are in
actverify/fuzzing/ (docs/ci.md).

Exit status (the table in README.md): 0 every planned test ran at least once and none failed,
1 a property failed, 2 a usage error (output paths are checked before the budget is spent),
3 incomplete: the budget ran out before every planned test ran once, SIGINT or SIGTERM
stopped the run (the session's whole process group is killed; the summary, JSON and JUnit XML
are written from what was found), or every test was skipped (nothing checked).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from actverify.errors import UsageError
from actverify.fuzzing.orchestrator import fuzz
from actverify.threads import add_argument as add_threads_argument


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, required=True, help="time budget in minutes")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="pytest-xdist worker processes (default: one per CPU; 0: none)")
    p.add_argument("--target", action="append", default=[], metavar="TARGET=ACTIVATION",
                   help="fuzz this kernel instead of PyTorch's entry points (repeatable), "
                        "e.g. mypkg.kernels:sigmoid=sigmoid")
    p.add_argument("--db", metavar="URL", default=None,
                   help="example database: dir:PATH or redis://HOST:PORT/N (default: "
                        "$ACTVERIFY_DB, else .hypothesis/examples)")
    p.add_argument("--read-only-db", action="store_true",
                   help="only read the --db database; keep what is found locally")
    p.add_argument("--shard", metavar="K/N", help="run shard K of N (CI matrix jobs)")
    p.add_argument("--seed", type=int, help="seed of the test order (default: random)")
    p.add_argument("--junitxml", metavar="PATH", help="write the JUnit XML of all rounds here")
    p.add_argument("--json", metavar="PATH", help="write a JSON summary here")
    add_threads_argument(p)
    p.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARGS",
                   help="more pytest arguments after --, e.g. -- -k accuracy "
                        "--actverify-dtype float32")


def run_args(args: argparse.Namespace) -> int:
    return fuzz(targets=args.target, minutes=args.minutes, workers=args.workers, db=args.db,
                shard=args.shard, read_only_db=args.read_only_db, pytest_args=args.pytest_args,
                seed=args.seed, junitxml=args.junitxml, json_path=args.json,
                threads=args.threads)


def main(argv: Sequence[str] | None = None) -> int:
    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:
            raise UsageError(f"{self.prog}: {message}")

    parser = Parser(prog="python -m actverify.fuzz", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    try:
        return run_args(parser.parse_args(argv))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
