"""The `actverify` command.

    actverify report [--activation NAME]... [--dtype D]... [--device DEV]... [--policy P]
                     [--profile P] [--json PATH]
    actverify check TARGET --activation NAME [--dtype D]... [--device DEV]... [--profile P]
                    [--json PATH] [--no-isolate] [--timeout S] [--property NAME]...
    actverify sweep [TARGET --activation NAME | --builtin] [--dtype D]... [--device DEV]
                    [--range LO:HI] [--all-float32] [--kink K] [--out DIR]
    actverify targets
    actverify gpu-check OUT [--device DEV]
    actverify isa [--activation NAME]... [--dtype D]... [--capability C]... [--json PATH]
                  [--threads N]
    actverify replay PATH [--root DIR]
    actverify --version
    actverify fuzz --minutes M [--workers N] [--target T=ACT]... [--db URL] [--read-only-db]
                   [--shard K/N] [--seed S] [--junitxml PATH] [--json PATH] [-- PYTEST_ARGS]

Exit status (every command; README.md, docs/check.md): 0 conforms (every planned check ran
to the end and held), 1 a property is violated, 2 a usage error (one line on stderr saying
what to fix, before any work starts), 3 incomplete (interrupted, timed out, could not run,
budget spent before every planned check ran, or nothing checked).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from actverify.errors import Interrupted, UsageError
from actverify.names import DTYPE_NAMES, KINKS, POLICY_NAMES, dtype_name
from actverify.outputs import writable_file
from actverify.threads import add_argument as add_threads_argument


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for our own usage errors
        raise UsageError(f"{self.prog}: {message}")


def _common(p: argparse.ArgumentParser, *, profile: str = "report") -> None:
    from actverify.profiles import PROFILES

    p.add_argument("--dtype", action="append", default=[], metavar="D",
                   help=f"dtype to check, repeatable ({', '.join(DTYPE_NAMES)}); default all")
    p.add_argument("--device", action="append", default=[], metavar="DEV",
                   help="device to check, repeatable; default every device present")
    p.add_argument("--policy", default="default", choices=sorted(POLICY_NAMES),
                   help="accuracy policy (docs/accuracy.md)")
    p.add_argument("--kink", default="pytorch", choices=list(KINKS),
                   help="derivative at a kink: PyTorch's value (relu'(0) = 0), or any "
                        "subgradient (math)")
    p.add_argument("--profile", default=None, choices=sorted(PROFILES),
                   help=f"Hypothesis profile: how hard to search (default: $ACTVERIFY_PROFILE, "
                        f"else {profile})")
    p.set_defaults(default_profile=profile)
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    add_threads_argument(p)


def build_parser() -> argparse.ArgumentParser:
    """The command line; building it imports no torch (`actverify check`'s parent never does).
    Hypothesis (the profiles) is imported here, not when this module is: `main` starts the
    check's first worker before that."""
    from actverify.profiles import PROFILES

    parser = _Parser(prog="actverify", description=__doc__.split("\n\n")[0])
    from actverify import __version__

    parser.add_argument("--version", action="version", version=f"actverify {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    report = sub.add_parser("report", help="verify PyTorch's own activations and print the "
                            "conformance table")
    report.add_argument("--activation", action="append", default=[], metavar="NAME",
                        help="activation to check, repeatable; default all")
    report.add_argument("--workers", type=int, default=None, metavar="N",
                        help="worker processes, each checking properties with --threads "
                             "threads (default: one per core this process may use)")
    _common(report)
    check = sub.add_parser("check", help="check a custom kernel against an activation's "
                           "properties and PyTorch's kernel")
    check.add_argument("target", help="package.module:attr, path/to/file.py:attr (attr may be "
                       "dotted, e.g. MyFunction.apply), or a registered target name")
    check.add_argument("--activation", required=False, metavar="NAME",
                       help="the activation the kernel implements (its F signature is used)")
    check.add_argument("--isolate", action="store_true", default=True,
                       help="run the kernel in a supervised worker process (the default): an "
                            "exit, a crash or a hang in C code becomes a finding")
    check.add_argument("--no-isolate", dest="isolate", action="store_false",
                       help="run the kernel in this process (exits and crashes end the run)")
    check.add_argument("--timeout", type=float, default=60.0, metavar="S",
                       help="time limit of each call of the kernel, in seconds (default 60); "
                            "a call past it is reported as timed out (incomplete)")
    check.add_argument("--property", action="append", default=[], metavar="NAME",
                       dest="properties", help="check only this property (repeatable)")
    check.add_argument("--workers", type=int, default=None, metavar="N",
                       help="supervised worker processes sharing the properties (default: "
                            "one per core, at most 4 and one per 40 planned runs)")
    _common(check, profile="check")
    sweep = sub.add_parser("sweep", help="every input of a 16-bit format (and float32 subsets "
                           "or all 2^32) against the reference, with a report")
    sweep.add_argument("target", nargs="?", help="a kernel as for check; omit with --builtin")
    sweep.add_argument("--activation", metavar="NAME", help="the activation TARGET implements "
                       "(with --builtin: sweep only this activation's PyTorch kernel)")
    sweep.add_argument("--builtin", action="store_true", help="sweep PyTorch's own kernels")
    sweep.add_argument("--dtype", action="append", default=[], metavar="D",
                       help="float16, bfloat16 (default both) or float32")
    sweep.add_argument("--device", default="cpu", metavar="DEV")
    sweep.add_argument("--range", dest="bit_range", metavar="LO:HI",
                       help="bit-pattern range for float32, e.g. 0x3f800000:0x40000000")
    sweep.add_argument("--all-float32", action="store_true", help="all 2^32 float32 inputs")
    sweep.add_argument("--policy", default="default", choices=sorted(POLICY_NAMES))
    sweep.add_argument("--kink", default="pytorch", choices=list(KINKS),
                       help="derivative at a kink: PyTorch's value, or any subgradient (math)")
    sweep.add_argument("--out", metavar="DIR", help="write the report, plots and JSON here")
    sweep.add_argument("--format", default="html", choices=["html", "md"],
                       help="report format: self-contained HTML, or Markdown with PNG files")
    add_threads_argument(sweep, work="sweep")
    isa = sub.add_parser("isa", help="compare PyTorch's CPU kernels across the instruction-"
                         "set capabilities this machine supports (default, avx2, avx512)")
    isa.add_argument("--activation", action="append", default=[], metavar="NAME")
    isa.add_argument("--dtype", action="append", default=[], metavar="D")
    isa.add_argument("--capability", action="append", default=[], metavar="C",
                     help="ATen CPU capability to compare with the one PyTorch picks, repeatable; "
                          "default every one supported")
    isa.add_argument("--forward-only", action="store_true", help="skip the backward passes")
    isa.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    add_threads_argument(isa, work="sweep")  # 2^20-element passes: threads pay
    sub.add_parser("targets", help="list PyTorch's entry points and registered kernels")
    gpu = sub.add_parser("gpu-check", help="run the CUDA checks (a no-op report without a GPU)")
    gpu.add_argument("out", help="folder for summary.json, summary.md and the reports")
    gpu.add_argument("--profile", default="dev", choices=sorted(PROFILES))
    gpu.add_argument("--device", metavar="DEV", help="the second device: cuda (default when "
                     "present), or cpu:1 to run the flow on the stand-in (docs/cuda.md)")
    add_threads_argument(gpu)
    replay = sub.add_parser("replay", help="re-run one saved failing case")
    replay.add_argument("path", help="a replay file named in a failure report")
    replay.add_argument("--root", metavar="DIR", help="the project root the target's path is "
                        "relative to (default: the current directory, else the one recorded)")
    add_threads_argument(replay)
    from actverify.fuzz import add_arguments as fuzz_arguments

    fuzz_arguments(sub.add_parser("fuzz", help="fuzz the property suite for a time budget, "
                                  "in parallel (docs/ci.md)"))
    return parser


def _run_report(args: argparse.Namespace) -> int:
    from actverify.accuracy import policy_named
    from actverify.devices import resolve_device
    from actverify.dtypes import float_format
    from actverify.profiles import profile_settings
    from actverify.report import Report
    from actverify.spec import get_spec
    from actverify.targets import all_builtin_targets

    dtypes = [float_format(d).name for d in args.dtype] or None
    devices = [resolve_device(d) for d in args.device] or None
    activations = [get_spec(a).name for a in args.activation] or None
    settings = profile_settings(_profile(args))
    json_path = writable_file(args.json, option="--json") if args.json else None
    report = Report.run(all_builtin_targets(activations), dtypes=dtypes, devices=devices,
                        policy=policy_named(args.policy, kink=args.kink), settings=settings,
                        json_path=json_path, workers=args.workers)
    report.print()
    return report.exit_status


def _run_check(args: argparse.Namespace) -> int:
    from actverify.check import check

    report = check(args.target, activation=args.activation, dtypes=args.dtype or None,
                   devices=args.device or None, policy=args.policy, kink=args.kink,
                   profile=_profile(args), json_path=args.json, isolate=args.isolate,
                   call_timeout=args.timeout, properties=args.properties or None,
                   workers=args.workers)
    report.print()
    return report.exit_status


def _profile(args: argparse.Namespace) -> str:
    """--profile, else ACTVERIFY_PROFILE, else the command's own default."""
    from actverify.profiles import chosen_profile

    return args.profile or chosen_profile(args.default_profile)


def _require_plots() -> None:
    """Sweep reports draw plots: say what to install before any work starts."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("sweep --out draws plots with matplotlib, which is not installed: "
                         "pip install 'actverify[plots]' (or drop --out)")


def _run_sweep(args: argparse.Namespace) -> int:
    from actverify.devices import resolve_device
    from actverify.dtypes import float_format
    from actverify.spec import get_spec, registry
    from actverify.accuracy import policy_named
    from actverify.sweep import parse_bit_range, run_sweep
    from actverify.targets import builtin_targets, resolve_target

    if args.builtin == bool(args.target):
        raise UsageError("sweep needs either TARGET --activation NAME or --builtin")
    if args.out:
        _require_plots()
    if args.builtin:  # --activation narrows the builtins to one activation's canonical form
        specs = [get_spec(args.activation)] if args.activation else list(registry().values())
        targets = [builtin_targets(spec)[0] for spec in specs]
    else:
        targets = [resolve_target(args.target, args.activation)]
    dtypes = [float_format(d).name for d in args.dtype] or ["float16", "bfloat16"]
    if args.out:
        from actverify.outputs import writable_dir

        writable_dir(args.out, option="--out")
    from actverify.report import interruptible

    with interruptible():  # SIGTERM as SIGINT: a sweep cut short exits 3, never 0
        results = run_sweep(targets=targets, dtypes=dtypes, device=resolve_device(args.device),
                            bit_range=parse_bit_range(args.bit_range) if args.bit_range
                            else None, out_dir=args.out, all_float32=args.all_float32,
                            policy=policy_named(args.policy, kink=args.kink),
                            report_format=args.format)
    for r in results:
        print(r.summary())
    if args.out:
        print(f"report: {Path(args.out) / f'sweep.{args.format}'}")
    return 0 if all(r.ok for r in results) else 1


def _run_targets() -> int:
    from actverify.spec import registry
    from actverify.targets import builtin_targets, registered_targets

    for spec in registry().values():
        print(f"{spec.name}: {spec.signature}")
        for t in builtin_targets(spec):
            print(f"  {t.source}")
    for name, value in registered_targets().items():
        print(f"registered {name}: {value}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["check"] and "--no-isolate" not in given:
        # Its first supervised worker starts before anything else, so that its torch import
        # begins at once (actverify/isolation.py: prestart; the check starts the others once
        # it knows how many); unused (a usage error), it is stopped.
        from actverify.isolation import discard_prestarted, prestart

        prestart()
        try:
            return _main(argv)
        finally:
            discard_prestarted()
    return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    try:
        from actverify.profiles import DATABASE_ERROR

        if DATABASE_ERROR:  # a malformed ACTVERIFY_DB
            raise UsageError(DATABASE_ERROR)
        args = build_parser().parse_args(argv)
        if getattr(args, "dtype", None):  # a misspelt dtype is told before torch is imported
            args.dtype = [dtype_name(d) for d in args.dtype]
        if args.command == "check" and args.isolate:  # torch is its workers' to import
            from actverify.threads import export as export_threads

            export_threads(threads=args.threads)
        elif hasattr(args, "threads") and args.command != "fuzz":  # fuzz: its workers' count
            from actverify.threads import apply as apply_threads

            apply_threads(threads=args.threads,
                          work="sweep" if args.command in ("sweep", "isa") else "properties")
        if args.command == "fuzz":
            from actverify.fuzz import run_args

            return run_args(args)
        if args.command == "report":
            return _run_report(args)
        if args.command == "check":
            return _run_check(args)
        if args.command == "targets":
            return _run_targets()
        if args.command == "sweep":
            return _run_sweep(args)
        if args.command == "gpu-check":
            from actverify.gpucheck import gpu_check

            return gpu_check(Path(args.out), profile=args.profile, device=args.device)
        if args.command == "isa":
            from actverify.devices import check_capability
            from actverify.dtypes import float_format
            from actverify.isa import run_isa
            from actverify.spec import get_spec

            return run_isa(activations=[get_spec(a).name for a in args.activation] or None,
                           dtypes=[float_format(d).name for d in args.dtype] or None,
                           capabilities=[check_capability(c) for c in args.capability] or None,
                           json_path=args.json, backward=not args.forward_only)
        if args.command == "replay":
            from actverify.runner import main_replay

            if not Path(args.path).is_file():
                raise UsageError(f"replay file {args.path!r} does not exist")
            return main_replay(args.path, root=args.root)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Interrupted) as exc:  # runs that keep a report report it
        why = f" by {exc}" if isinstance(exc, Interrupted) else ""
        print(f"interrupted{why}: the run did not finish (incomplete)", file=sys.stderr)
        return 3
    return 2


if __name__ == "__main__":
    sys.exit(main())
