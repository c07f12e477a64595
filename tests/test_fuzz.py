"""Parallel fuzzing in CI: shards, example databases, and a failure found by one fuzz run that a
second, separate run replays from a shared Redis database."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    InMemoryExampleDatabase,
    MultiplexedDatabase,
)

from actverify import fuzz as fuzz_command
from actverify.fuzzing import shard as sharding
from actverify.fuzzing.orchestrator import fuzz
from actverify.database import (
    DatabaseWarning,
    GuardedDatabase,
    database_from_env,
    database_from_url,
    open_database,
)
from actverify.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent


def _suite_ids() -> list[str]:
    from actverify.devices import available_devices
    from actverify.suite import suite_cases

    cases = suite_cases(devices=list(available_devices()))
    # properties/test_scale.py is marked slow (deterministic: one run per regime, nothing for
    # a fuzzer to search), so neither the default run nor `actverify fuzz` collects it.
    return [f"properties/test_{c.group}.py::test_property[{c.id}]" for c in cases
            if c.group != "scale"]


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST", "ACTVERIFY_"))}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- sharding --------------------------------------------------------------------------------

def test_shards_partition_the_suite_without_overlap_and_cover_it() -> None:
    ids = _suite_ids()
    assert len(ids) == len(set(ids)) > 100
    for n in (1, 2, 3, 4, 7):
        shards = [sharding.select_shard(ids, k, n) for k in range(1, n + 1)]
        seen = [t for shard in shards for t in shard]
        assert len(seen) == len(ids) and set(seen) == set(ids), f"{n} shards overlap or miss"
        # balanced enough for a CI matrix: every shard within 25% of the mean
        assert all(abs(len(s) - len(ids) / n) <= 0.25 * len(ids) / n for s in shards), \
            [len(s) for s in shards]


def test_a_test_keeps_its_shard_when_others_come_and_go() -> None:
    ids = _suite_ids()
    before = {t: sharding.shard_of(t, 4) for t in ids}
    after = {t: sharding.shard_of(t, 4) for t in ids[::3] + ["properties/test_new.py::x[y]"]}
    assert all(after[t] == before[t] for t in ids[::3])
    # a stable hash (sha256), not Python's salted hash(): the same on every CI machine
    assert sharding.shard_of("properties/test_values.py::test_property[accuracy]", 4) == 1


@pytest.mark.parametrize("text", ["", "2", "0/4", "5/4", "1/0", "a/b", "-1/3", "1/2/3"])
def test_bad_shards_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="K/N|between 1 and N"):
        sharding.parse_shard(text)
    assert sharding.parse_shard(" 2 / 4 ") == (2, 4)


class _Collected:
    """A plugin that keeps the node ids a pytest session collected, in their order."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.ids = [item.nodeid for item in session.items]


def test_the_shard_option_selects_the_same_tests_as_the_hash(monkeypatch, capsys) -> None:
    # Collected in this process: a pytest subprocess would import torch again (about 3.5 s of
    # CPU against 1 s); collecting changes no state the other tests see.
    monkeypatch.chdir(ROOT)
    for name in [k for k in os.environ if k not in _env()]:
        monkeypatch.delenv(name)
    got = _Collected()
    status = pytest.main(["properties", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "--actverify-shard", "2/3", "--actverify-order", "7"], plugins=[got])
    assert status == 0, capsys.readouterr().out
    assert sorted(got.ids) == sorted(sharding.select_shard(_suite_ids(), 2, 3))
    assert got.ids != sorted(got.ids)  # --actverify-order shuffled them


# --- database URLs ---------------------------------------------------------------------------

def test_no_url_is_the_local_directory_that_xdist_workers_share() -> None:
    for url in (None, "", "  "):
        db = database_from_url(url)
        assert isinstance(db, DirectoryBasedExampleDatabase)
        assert db.path == Path(".hypothesis/examples")


def test_dir_urls(tmp_path: Path) -> None:
    db = database_from_url(f"dir:{tmp_path / 'db'}")
    assert isinstance(db, DirectoryBasedExampleDatabase) and db.path == tmp_path / "db"
    db.save(b"k", b"v")
    assert list(db.fetch(b"k")) == [b"v"]


def test_read_only_dir_is_read_and_never_written(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    shared = tmp_path / "ci-db"
    DirectoryBasedExampleDatabase(shared).save(b"key", b"from-ci")
    db = database_from_url(f"dir:{shared}", read_only=True)
    assert isinstance(db, MultiplexedDatabase)
    db.save(b"key", b"found-locally")
    db.delete(b"key", b"from-ci")
    assert set(db.fetch(b"key")) == {b"from-ci", b"found-locally"}
    assert list(DirectoryBasedExampleDatabase(shared).fetch(b"key")) == [b"from-ci"]
    assert list(DirectoryBasedExampleDatabase(".hypothesis/examples").fetch(b"key")) == \
        [b"found-locally"]


def test_a_missing_read_only_database_warns_and_runs_locally(tmp_path: Path) -> None:
    with pytest.warns(DatabaseWarning, match="nothing to read.*continues with the local"):
        db, effective = open_database(f"dir:{tmp_path / 'absent'}", read_only=True)
    assert effective is None and isinstance(db, DirectoryBasedExampleDatabase)


@pytest.mark.parametrize("url, message", [
    ("foo", r"unknown example database 'foo' \(did you mean dir:foo\?\).*redis://HOST:PORT/N"),
    ("/tmp/db", r"did you mean dir:/tmp/db"),
    ("http://h/0", "unknown example database"),
    ("dir:", "names no directory; write dir:PATH"),
    ("redis://", "names no host; write redis://HOST:PORT/N"),
    ("redis://h:port/0", "port must be a number"),
    ("redis://h:99999/0", "port must be a number"),
    ("redis://h:6379/zero", "redis database number"),
    ("redis://h:6379/0?ttl=3", "not supported"),
])
def test_malformed_urls_are_usage_errors_that_say_what_to_write(url: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        database_from_url(url)


def test_a_file_is_not_a_directory_database(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(UsageError, match="is a file, not a directory"):
        database_from_url(f"dir:{tmp_path / 'f'}")


def test_without_the_redis_package_the_error_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(UsageError, match=r"pip install redis=="):
        database_from_url("redis://localhost:6379/0")


def test_an_unreachable_redis_warns_and_the_run_goes_on_locally() -> None:
    pytest.importorskip("redis", reason="the redis client package is not installed")
    port = _free_port()  # nothing listens there
    start = time.monotonic()
    with pytest.warns(DatabaseWarning, match=rf"redis://127.0.0.1:{port}/0 is unreachable "
                                             r"\(ConnectionError.*continues with the local"):
        db, effective = open_database(f"redis://127.0.0.1:{port}/0")
    assert effective is None and isinstance(db, DirectoryBasedExampleDatabase)
    assert time.monotonic() - start < 3  # every worker pays this once (redis-py alone: ~4 s)


class _Broken(ExampleDatabase):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc, self.calls = exc, 0

    def fetch(self, key):
        self.calls += 1
        yield b"first"
        raise self.exc

    def save(self, key, value):
        self.calls += 1
        raise self.exc

    def delete(self, key, value):
        raise self.exc


def test_a_remote_that_drops_mid_run_warns_once_and_is_left_alone() -> None:
    remote = _Broken(ConnectionResetError("connection reset by peer"))
    local = InMemoryExampleDatabase()
    db = MultiplexedDatabase(local, GuardedDatabase(remote, "redis://ci:6379/0"))
    with pytest.warns(DatabaseWarning, match="became unreachable during fetch.*local database"):
        assert list(db.fetch(b"k")) == [b"first"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        db.save(b"k", b"v")  # no second warning, no exception, no call to the remote
    assert remote.calls == 1 and list(local.fetch(b"k")) == [b"v"]


def test_a_corrupt_remote_entry_is_skipped_with_one_warning() -> None:
    remote = _Broken(ValueError("WRONGTYPE Operation against a key holding the wrong kind"))
    db = GuardedDatabase(remote, "redis://ci:6379/0")
    with pytest.warns(DatabaseWarning, match="corrupt or foreign entry"):
        db.save(b"k", b"v")
        db.save(b"k", b"w")
        list(db.fetch(b"k"))
    assert not db.disabled and remote.calls == 3


def test_the_environment_names_the_database(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ACTVERIFY_DB", raising=False)
    assert database_from_env() is None  # Hypothesis's default stays
    monkeypatch.setenv("ACTVERIFY_DB", f"dir:{tmp_path}")
    assert isinstance(database_from_env(), DirectoryBasedExampleDatabase)
    monkeypatch.setenv("ACTVERIFY_DB_READ_ONLY", "perhaps")
    with pytest.raises(UsageError, match="ACTVERIFY_DB_READ_ONLY='perhaps'"):
        database_from_env()
    monkeypatch.setenv("ACTVERIFY_DB_READ_ONLY", "1")
    monkeypatch.setenv("ACTVERIFY_DB", "nonsense")
    with pytest.raises(UsageError, match="ACTVERIFY_DB: unknown example database"):
        database_from_env()


def test_workers_share_one_directory_database_safely(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import sys
        from hypothesis.database import DirectoryBasedExampleDatabase  # what database_from_url
        db = DirectoryBasedExampleDatabase("{tmp_path / 'db'}")       # gives every worker
        me = sys.argv[1].encode()
        for i in range(150):
            db.save(b"shared-key", me + b"-%d" % i + b"x" * 200)
            assert all(v.endswith(b"x" * 200) for v in db.fetch(b"shared-key"))
        """)
    procs = [subprocess.Popen([sys.executable, "-c", script, name], env=_env())
             for name in ("gw0", "gw1", "gw2")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0]
    values = set(DirectoryBasedExampleDatabase(tmp_path / "db").fetch(b"shared-key"))
    assert len(values) == 450


# --- the fuzz command ------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(minutes=0, workers=1), "--minutes must be a positive number"),
    (dict(minutes=1, workers=-1), "--workers must be 0"),
    (dict(minutes=1, workers=1, shard="5/4"), "between 1 and N"),
    (dict(minutes=1, workers=1, targets=["torch.sigmoid"]), "must be TARGET=ACTIVATION"),
    (dict(minutes=1, workers=1, targets=["nowhere.py:f=sigmoid"]), "does not exist"),
    (dict(minutes=1, workers=1, db="redis:/x"), "names no host"),
])
def test_fuzz_usage_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        fuzz(**kwargs)


def test_fuzz_command_line_exits_2_on_a_usage_error(capsys) -> None:
    assert fuzz_command.main(["--minutes", "1", "--shard", "x"]) == 2
    assert "shard 'x' must be K/N" in capsys.readouterr().err
    assert fuzz_command.main(["--workers", "2"]) == 2  # --minutes is required
    assert "--minutes" in capsys.readouterr().err


# --- a failure found by one fuzz run, replayed by another from Redis -------------------------

@pytest.fixture(scope="module")
def redis_url():
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (apt-get install -y redis-server): the "
                    "replay-from-a-shared-database test needs a real server")
    redis = pytest.importorskip("redis", reason="the redis client package is not installed "
                                                "(pip install redis)")
    for _ in range(3):
        port = _free_port()
        proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1",
                                 "--save", "", "--appendonly", "no"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port, socket_connect_timeout=1)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            proc.kill()
            continue
        if proc.poll() is None:
            break
    else:
        pytest.skip("redis-server did not start on a loopback port")
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(timeout=10)


def _snapshot(url: str) -> dict:
    import redis

    client = redis.Redis.from_url(url)
    return {k: (sorted(client.smembers(k)) if client.type(k) == b"set" else client.get(k))
            for k in client.keys("*")}


PLANTED = """
import torch

def sigmoid(x):  # a planted bug: NaN for x > 5
    y = torch.sigmoid(x)
    return torch.where(x > 5, torch.full_like(y, float("nan")), y)
"""


@pytest.mark.slow  # two fuzz runs against a Redis server (15 s): .ci/run's slow set
def test_a_failure_fuzzing_found_is_replayed_from_redis_by_a_separate_run(
        redis_url: str, tmp_path: Path, monkeypatch) -> None:
    kernel = tmp_path / "planted.py"
    kernel.write_text(PLANTED)
    target = f"{kernel}:sigmoid=sigmoid"
    select = ["--actverify-dtype", "float32", "-k", "values and accuracy"]
    first, control, second = (tmp_path / d for d in ("first", "control", "second"))
    for d in (first, control, second):
        d.mkdir()

    # 1. fuzzing (one xdist worker, so the database reaches Hypothesis in a worker) finds it
    monkeypatch.chdir(first)
    summary_path = tmp_path / "summary.json"
    status = fuzz(targets=[target], minutes=1.0, workers=1, db=redis_url,
                          pytest_args=select, json_path=str(summary_path))
    summary = json.loads(summary_path.read_text())
    assert status == 1, summary
    assert [f["test"] for f in summary["failures"]] == [
        "actverify.testsuite.test_values::test_property"
        f"[accuracy-sigmoid-{kernel}:sigmoid-float32-cpu]"]
    failure = summary["failures"][0]
    assert "unexpected NaN" in failure["text"] and "--hypothesis-profile actverify-replay" in \
        failure["reproduce"] and f"ACTVERIFY_DB={redis_url}" in failure["reproduce"]
    assert summary["examples_counted"] and summary["examples"] >= 1
    shared = _snapshot(redis_url)
    assert shared, "nothing reached the shared database"

    # 2. a separate run that only replays what its database holds: with an empty database it
    #    generates nothing and passes; with the shared one (read-only) it fails at once.
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "properties"), f"--rootdir={ROOT}",
           "-p", "no:cacheprovider", "--hypothesis-profile", "actverify-replay",
           "--actverify-target", target, *select]
    runs = {
        "control": subprocess.Popen(cmd, cwd=control, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True,
                                    env=_env(ACTVERIFY_DB=f"dir:{control / 'empty'}")),
        "second": subprocess.Popen(cmd, cwd=second, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True,
                                   env=_env(ACTVERIFY_DB=redis_url, ACTVERIFY_DB_READ_ONLY="1",
                                            ACTVERIFY_PROGRESS=str(second / "progress.jsonl"))),
    }
    out = {name: p.communicate(timeout=120)[0] for name, p in runs.items()}
    assert runs["control"].returncode == 0, out["control"]
    assert runs["second"].returncode == 1, out["second"]
    assert "accuracy violated by" in out["second"] and "unexpected NaN" in out["second"]
    records = [json.loads(x) for x in (second / "progress.jsonl").read_text().splitlines()]
    final = [r for r in records if r["kind"] == "property" and r["status"] == "failed"]
    assert [r["status"] for r in records if r["kind"] == "result"] == ["FAILED"], records
    assert len(final) == 1 and final[0]["examples"] <= 2, records  # the saved example, at once

    # read-only: the shared database is untouched; the local one keeps what was replayed
    assert _snapshot(redis_url) == shared
    assert any((second / ".hypothesis" / "examples").iterdir())


def test_a_corrupt_entry_in_redis_warns_and_the_run_goes_on(redis_url: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).set(b"hypothesis-example:corrupt", b"not a set")
    db = database_from_url(redis_url)
    with pytest.warns(DatabaseWarning, match="WRONGTYPE"):
        assert list(db.fetch(b"corrupt")) == []
    db.save(b"fine", b"value")
    assert b"value" in set(db.fetch(b"fine"))


# Under xdist (2 workers) the records must come from the controller alone: a 14 s run, in the
# slow set (.ci/run runs it after the default set).
@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])
def test_rounds_repeat_the_tests_in_one_session_with_growing_caps(workers: int,
                                                                  tmp_path: Path) -> None:
    """--actverify-rounds: every selected test once per round, round r capped at 5 x 4^(r-1)
    examples (and at --actverify-max-examples); results are recorded once each (by the xdist
    controller, not its workers too), with their round."""
    import actverify.testsuite

    records = tmp_path / "records.jsonl"
    # --confcutdir: this checkout's conftest.py loads the `dev` profile, as `fuzz` keeps out.
    suite = Path(actverify.testsuite.__file__).parent
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "actverify.testsuite", "-q",
         f"--confcutdir={suite}",
         "-p", "no:cacheprovider", "--hypothesis-profile", "actverify-fuzz", "-n", str(workers),
         "--actverify-activation", "sigmoid", "--actverify-dtype", "float32",
         "--actverify-device", "cpu", "-k", "accuracy", "--actverify-rounds", "3",
         "--actverify-order", "7", "--actverify-max-examples", "12"],
        cwd=tmp_path, env=_env(ACTVERIFY_PROGRESS=str(records)), capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    got = [json.loads(line) for line in records.read_text().splitlines()]
    planned = {r["items"] for r in got if r["kind"] == "collected"}
    results = [r for r in got if r["kind"] == "result"]
    assert len(planned) == 1 and (n := planned.pop()) >= 3
    per_round = {k: [r["test"] for r in results if r["round"] == k] for k in (1, 2, 3)}
    assert len(results) == 3 * n and all(r["status"] == "PASSED" for r in results)
    assert all(len(t) == len(set(t)) == n for t in per_round.values())
    assert set(per_round[1]) == set(per_round[2]) == set(per_round[3])
    examples = [r["examples"] for r in got if r["kind"] == "property"
                and r["status"] != "running"]
    assert len(examples) == 3 * n and 5 < max(examples) <= 12
    if workers == 0:  # one process: results and property records in the order of the rounds
        assert per_round[1] != per_round[2] != per_round[3]  # each round shuffled its own way
        caps = [sharding.round_examples(r["round"], 12) for r in results]
        assert all(e <= cap for e, cap in zip(examples, caps)), list(zip(examples, caps))
