"""Sharding, ordering and capping a pytest run of the property suite; part of actverify's
pytest plugin (actverify/plugin.py loads it), used by `actverify fuzz` and by CI matrix jobs:

    --actverify-shard K/N         run only the tests whose id hashes to shard K of N
    --actverify-order SEED        shuffle the tests with this seed (the same in every worker)
    --actverify-max-examples N    cap max_examples of the loaded Hypothesis profile
    --actverify-rounds N          run the selected tests N times over, as rounds of a fuzz run
    --actverify-first-round K     the first of those rounds is round K (default 1)

Rounds are how `actverify fuzz` searches: round r runs every selected test once, in the order
of seed + r - 1, with at most 5 * 4^(r-1) examples (up to the cap): coverage before depth.
They run in one pytest session, so the workers start and collect once, and a worker that
finishes its share of a round goes on with the next instead of waiting for the others.

(PYTEST_DONT_REWRITE: this module may be imported before pytest loads it as a plugin, and
it has no asserts to rewrite, so pytest need not warn about it.)
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence

from pluggy import HookimplMarker

from actverify.errors import UsageError

hookimpl = HookimplMarker("pytest")

FIRST_ROUND_EXAMPLES = 5  # examples per property in round 1 (coverage first); x4 each round after
ROUND_KEY = "actverify_round"  # the round of a test, in its report's user_properties
_BASE: dict[str, object] = {}  # the loaded profile as it was before any cap


def round_examples(rnd: int, cap: int) -> int:
    """The most examples a property gets in round `rnd` of a fuzz run."""
    return min(cap, FIRST_ROUND_EXAMPLES * 4 ** (rnd - 1))


def parse_shard(text: str) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; UsageError otherwise."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not m:
        raise UsageError(f"shard {text!r} must be K/N, e.g. 2/4 for the second of four shards")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise UsageError(f"shard {text!r}: K must be between 1 and N (N >= 1), e.g. 1/{max(n, 1)}")
    return k, n


def shard_of(test_id: str, n: int) -> int:
    """The shard (1..n) of a test: a stable hash of its id, the same on every machine and in
    every process (Python's hash() is salted; this is not), and untouched when other tests
    are added or removed."""
    digest = hashlib.sha256(test_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % n + 1


def select_shard(test_ids: Sequence[str], k: int, n: int) -> list[str]:
    return [t for t in test_ids if shard_of(t, n) == k]


def pytest_addoption(parser) -> None:
    group = parser.getgroup("actverify")
    group.addoption("--actverify-shard", metavar="K/N", default=None,
                    help="run only shard K of N: the tests whose id hashes to K (N CI jobs "
                         "cover the suite without overlap)")
    group.addoption("--actverify-order", metavar="SEED", type=int, default=None,
                    help="shuffle the tests with this seed (every xdist worker alike)")
    group.addoption("--actverify-max-examples", metavar="N", type=int, default=None,
                    help="cap max_examples of the loaded Hypothesis profile (fuzz rounds)")
    group.addoption("--actverify-rounds", metavar="N", type=int, default=None,
                    help="run the selected tests N times over, in rounds of growing depth "
                         "(actverify fuzz)")
    group.addoption("--actverify-first-round", metavar="K", type=int, default=1,
                    help="number the rounds of --actverify-rounds from K")


@hookimpl(trylast=True)  # after Hypothesis's plugin has loaded --hypothesis-profile
def pytest_configure(config) -> None:
    import pytest

    shard = config.getoption("actverify_shard", None)
    n = config.getoption("actverify_max_examples", None)
    try:
        if shard is not None:
            parse_shard(shard)
        for option, value in (("--actverify-max-examples", n),
                              ("--actverify-rounds", config.getoption("actverify_rounds", None)),
                              ("--actverify-first-round",
                               config.getoption("actverify_first_round", 1))):
            if value is not None and value < 1:
                raise UsageError(f"{option} must be at least 1, got {value}")
    except UsageError as exc:
        pytest.exit(f"actverify: {exc}", returncode=2)
    if n is not None:
        _cap_examples(n)


def _cap_examples(n: int) -> None:
    from hypothesis import settings

    name = settings.get_current_profile_name()
    base = _BASE.setdefault(name, settings.get_profile(name))
    # Re-registering the active profile makes it take effect at once (the database and every
    # other setting are inherited from the profile as loaded).
    settings.register_profile(name, parent=base, max_examples=min(base.max_examples, n))


@hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    cap = getattr(item, "_actverify_max_examples", None)
    if cap is not None:
        _cap_examples(cap)


def _copy(item):
    """Another run of the same test (a distinct item: pytest sets up and tears down each)."""
    import pytest

    return pytest.Function.from_parent(
        item.parent, name=item.name, callspec=getattr(item, "callspec", None),
        callobj=item.obj, keywords=item.keywords, fixtureinfo=item._fixtureinfo,
        originalname=item.originalname)


def _rounds(config, items: list) -> list:
    """The tests as rounds (module doc): each round a shuffled copy of them, capped."""
    import pytest
    from hypothesis import settings

    count = config.getoption("actverify_rounds")
    first = config.getoption("actverify_first_round", 1)
    seed = config.getoption("actverify_order", None) or 0
    cap = settings.get_profile(settings.get_current_profile_name()).max_examples
    if config.getoption("actverify_max_examples", None) is not None:
        cap = min(cap, config.getoption("actverify_max_examples"))
    # Only plain test functions can be run again; anything else runs in the first round.
    repeatable = [i for i in items if isinstance(i, pytest.Function)]
    out = []
    for rnd in range(first, first + count):
        chosen = list(items) if rnd == first else [_copy(i) for i in repeatable]
        chosen.sort(key=lambda item: item.nodeid)  # a canonical order, then the round's shuffle
        random.Random(seed + rnd - 1).shuffle(chosen)
        for item in chosen:
            item._actverify_max_examples = round_examples(rnd, cap)
            item.user_properties.append((ROUND_KEY, rnd))
        out += chosen
    return out


@hookimpl(trylast=True)  # after -k and -m deselected what they do not select
def pytest_collection_modifyitems(session, config, items) -> None:
    shard = config.getoption("actverify_shard", None)
    if shard is not None:
        k, n = parse_shard(shard)
        kept, dropped = [], []
        for item in items:
            (kept if shard_of(item.nodeid, n) == k else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    seed = config.getoption("actverify_order", None)
    if seed is not None:
        items.sort(key=lambda item: item.nodeid)  # a canonical order first, then the shuffle
        random.Random(seed).shuffle(items)
    config._actverify_round_size = len(items)  # the tests of one round, for the records
    if config.getoption("actverify_rounds", None):
        items[:] = _rounds(config, items)
