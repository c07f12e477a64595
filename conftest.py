"""pytest options for the property suite, and its parametrization.

    pytest properties --actverify-dtype float16 --actverify-device cpu --actverify-policy strict

Each test in properties/ is one (property, target, dtype, device): the ids read
`accuracy[sigmoid-torch.sigmoid-float32-cpu]`, so `-k` selects what you want.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from actverify import profiles  # noqa: F401  (registers the Hypothesis profiles)
from actverify import threads
from actverify.accuracy import POLICIES, policy_named
from actverify.devices import available_devices, resolve_device
from actverify.dtypes import DTYPE_NAMES, float_format
from actverify.errors import UsageError
from actverify.spec import get_spec, registry

# The default test run uses the short `dev` profile; `--hypothesis-profile` overrides it.
settings.load_profile(os.environ.get(profiles.ENV_VAR, "dev"))

# --actverify-shard K/N, --actverify-order SEED, --actverify-max-examples N (docs/ci.md)
pytest_plugins = ["actverify.fuzz"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("actverify")
    group.addoption("--actverify-dtype", action="append", default=[], metavar="DTYPE",
                    help=f"check only these dtypes (repeatable; {', '.join(DTYPE_NAMES)})")
    group.addoption("--actverify-device", action="append", default=[], metavar="DEVICE",
                    help="check these devices (repeatable); an absent device is an error. "
                         "Default: every device present")
    group.addoption("--actverify-activation", action="append", default=[], metavar="NAME",
                    help=f"check only these activations ({', '.join(registry())})")
    group.addoption("--actverify-policy", default="default", choices=sorted(POLICIES),
                    help="accuracy policy (docs/accuracy.md)")
    group.addoption("--actverify-kink", default="pytorch", choices=["pytorch", "math"],
                    help="derivative at a kink: PyTorch's value, or any subgradient (math)")
    group.addoption("--actverify-huge", action="store_true",
                    help="run the opt-in case of more than 2^31 elements (needs ~8 GiB)")
    group.addoption("--actverify-target", action="append", default=[], metavar="TARGET=NAME",
                    help="run the property suite against a custom kernel instead of PyTorch's "
                         "entry points, e.g. mypkg.kernels:sigmoid=sigmoid (repeatable)")


def pytest_configure(config: pytest.Config) -> None:
    """Bad options stop the run at once with status 2 and one line saying what to fix
    (an absent device is an error, never a silent skip)."""
    threads.configure_pytest(config)  # one intra-op thread per process (actverify.threads)
    if profiles.DATABASE_ERROR:  # a malformed ACTVERIFY_DB
        pytest.exit(f"actverify: {profiles.DATABASE_ERROR}", returncode=2)
    try:
        _selection(config)
    except pytest.UsageError as exc:
        pytest.exit(f"actverify: {exc}", returncode=2)


def _selection(config: pytest.Config) -> dict:
    try:
        dtypes = [float_format(d).name for d in config.getoption("actverify_dtype")] or None
        devices = [resolve_device(d) for d in config.getoption("actverify_device")] or None
        activations = [get_spec(a).name for a in config.getoption("actverify_activation")]
        targets = []
        for text in config.getoption("actverify_target"):
            from actverify.targets import resolve_target

            ref, sep, act = text.rpartition("=")
            if not sep or not ref:
                raise UsageError(f"--actverify-target {text!r} must be TARGET=ACTIVATION")
            targets.append(resolve_target(ref, act))
    except UsageError as exc:
        raise pytest.UsageError(str(exc)) from None
    return dict(dtypes=dtypes, devices=devices or list(available_devices()),
                activations=activations or None, targets=targets or None,
                policy=policy_named(config.getoption("actverify_policy"),
                                    kink=config.getoption("actverify_kink")))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "subject_property" not in metafunc.fixturenames:
        return
    from actverify.suite import suite_cases

    group = metafunc.module.GROUP
    chosen = _selection(metafunc.config)
    cases = [c for c in suite_cases(**chosen) if c.group == group]
    metafunc.parametrize("subject_property", cases, ids=[c.id for c in cases])


@pytest.fixture
def huge_device(request: pytest.FixtureRequest) -> str:
    """The device for the >2^31-element case; skipped unless --actverify-huge is given."""
    if not request.config.getoption("actverify_huge"):
        pytest.skip("opt-in: pass --actverify-huge (needs about 8 GiB on the device)")
    return _selection(request.config)["devices"][-1]
