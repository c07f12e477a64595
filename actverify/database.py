"""Where Hypothesis keeps what it found: the example database, chosen by one URL.

    (unset)              .hypothesis/examples, a DirectoryBasedExampleDatabase in the current
                         directory (Hypothesis's own default location)
    dir:PATH             a DirectoryBasedExampleDatabase at PATH (e.g. a directory that CI caches)
    redis://HOST:PORT/N  a RedisExampleDatabase (database number N), multiplexed with the local
                         directory so nothing found is lost when the server goes away
                         (rediss:// for TLS; redis://:PASSWORD@HOST:PORT/N with a password)

Read-only mode (`read_only=True`, or ACTVERIFY_DB_READ_ONLY=1) is for developers who replay
what CI found: the shared database is only read (`ReadOnlyDatabase`), and what the local run
finds goes to the local directory only.

Every pytest process (each xdist worker too) calls `database_from_env()` where the profiles
are loaded, so the choice made with ACTVERIFY_DB reaches Hypothesis in the workers.  The
directory database is safe to share between the workers of one machine: Hypothesis writes
each example to a temporary file and renames it into place, one file per example.

An unreachable server, or one that answers with errors (a corrupt or foreign key), gives a
`DatabaseWarning` saying what happened, and the run goes on with the local directory.  A
malformed URL is a `UsageError` (exit status 2) that says what to write instead.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from hypothesis.database import (
    DirectoryBasedExampleDatabase,
    ExampleDatabase,
    MultiplexedDatabase,
    ReadOnlyDatabase,
)

from actverify.errors import UsageError

ENV_VAR = "ACTVERIFY_DB"
READ_ONLY_ENV_VAR = "ACTVERIFY_DB_READ_ONLY"
LOCAL_DIR = Path(".hypothesis") / "examples"
REDIS_PIN = "redis==8.1.0"  # the client version this module is tested with
CONNECT_TIMEOUT = 2.0  # seconds: an unreachable server must not stall every worker for long
SOCKET_TIMEOUT = 5.0

_FORMS = ("leave it unset for .hypothesis/examples, or use dir:PATH or "
          "redis://HOST:PORT/N (e.g. redis://localhost:6379/0)")


class DatabaseWarning(UserWarning):
    """The example database could not be used as asked; the run goes on locally."""


def local_database() -> DirectoryBasedExampleDatabase:
    return DirectoryBasedExampleDatabase(LOCAL_DIR)


def _warn(message: str) -> None:
    warnings.warn(message, DatabaseWarning, stacklevel=3)


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + netloc).geturl()


def parse_url(url: str) -> dict:
    """Check a database URL and split it: {'kind': 'dir', 'path'} or {'kind': 'redis', ...}.

    Raises UsageError with the accepted forms when the URL is malformed."""
    text = url.strip()
    if text.startswith("dir:"):
        path = text[len("dir:"):]
        if path.startswith("//"):  # dir:///abs/path, as a URL would be written
            path = path[2:]
        if not path:
            raise UsageError(f"example database {url!r} names no directory; write dir:PATH, "
                             "e.g. dir:.fuzz-db")
        return {"kind": "dir", "path": Path(path).expanduser()}
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme not in ("redis", "rediss"):
        hint = f" (did you mean dir:{text}?)" if scheme == "" or len(scheme) == 1 else ""
        raise UsageError(f"unknown example database {url!r}{hint}; {_FORMS}")
    parts = urlsplit(text)
    if not parts.hostname:
        raise UsageError(f"example database {describe(url)!r} names no host; write "
                         f"{scheme}://HOST:PORT/N, e.g. {scheme}://localhost:6379/0")
    try:
        port = parts.port or 6379
    except ValueError:
        raise UsageError(f"example database {describe(url)!r}: the port must be a number from "
                         "1 to 65535, e.g. redis://localhost:6379/0") from None
    number = parts.path.strip("/") or "0"
    if not number.isdigit():
        raise UsageError(f"example database {describe(url)!r}: after the port comes the redis "
                         f"database number (0, 1, ...), not {parts.path!r}")
    if parts.query or parts.fragment:
        raise UsageError(f"example database {describe(url)!r}: options after '?' or '#' are "
                         "not supported; write redis://HOST:PORT/N")
    return {"kind": "redis", "tls": scheme == "rediss", "host": parts.hostname, "port": port,
            "db": int(number), "username": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password is not None else None}


def _is_connection_error(exc: BaseException) -> bool:
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError
    except ImportError:  # pragma: no cover
        return isinstance(exc, OSError)
    return isinstance(exc, (RedisConnectionError, RedisTimeoutError, OSError))


class GuardedDatabase(ExampleDatabase):
    """A remote database whose errors never stop a run.

    Lost connection: one DatabaseWarning, then the remote is left alone for the rest of the
    process (the local database still has everything).  Any other error (a corrupt entry, a
    key of the wrong type): one DatabaseWarning for each kind of error, and the operation is
    skipped.  Hypothesis itself drops entries that do not decode.
    """

    def __init__(self, db: ExampleDatabase, name: str) -> None:
        super().__init__()
        self._db = db
        self.name = name
        self.disabled = False
        self._warned: set[str] = set()

    def __repr__(self) -> str:
        return f"GuardedDatabase({self._db!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GuardedDatabase) and self._db == other._db

    def __hash__(self) -> int:
        return hash(("guarded", self.name))

    def _failed(self, operation: str, exc: Exception) -> None:
        what = f"{type(exc).__name__}: {exc}"
        if _is_connection_error(exc):
            self.disabled = True
            _warn(f"example database {self.name} became unreachable during {operation} "
                  f"({what}); this run continues with the local database {LOCAL_DIR} only")
        elif type(exc).__name__ not in self._warned:
            self._warned.add(type(exc).__name__)
            _warn(f"example database {self.name} answered {operation} with an error ({what}): "
                  f"a corrupt or foreign entry? It is skipped and the run continues "
                  f"(the local database {LOCAL_DIR} keeps what is found)")

    def fetch(self, key: bytes) -> Iterable[bytes]:
        if self.disabled:
            return
        try:
            yield from self._db.fetch(key)
        except Exception as exc:
            self._failed("fetch", exc)

    def save(self, key: bytes, value: bytes) -> None:
        if not self.disabled:
            try:
                self._db.save(key, value)
            except Exception as exc:
                self._failed("save", exc)

    def delete(self, key: bytes, value: bytes) -> None:
        if not self.disabled:
            try:
                self._db.delete(key, value)
            except Exception as exc:
                self._failed("delete", exc)

    def move(self, src: bytes, dest: bytes, value: bytes) -> None:
        if not self.disabled:
            try:
                self._db.move(src, dest, value)
            except Exception as exc:
                self._failed("move", exc)

    def _start_listening(self) -> None:
        try:
            self._db.add_listener(self._broadcast_change)
        except Exception as exc:
            self._failed("listen", exc)

    def _stop_listening(self) -> None:
        try:
            self._db.remove_listener(self._broadcast_change)
        except Exception as exc:
            self._failed("stop listening", exc)


def _redis_database(parsed: dict, url: str) -> ExampleDatabase | None:
    """A guarded RedisExampleDatabase, or None (after a warning) when the server does not
    answer a PING."""
    try:
        import redis
        from hypothesis.extra.redis import RedisExampleDatabase
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry
    except ImportError:
        raise UsageError(f"example database {describe(url)!r} needs the redis client package: "
                         f"pip install {REDIS_PIN}") from None
    client = redis.Redis(host=parsed["host"], port=parsed["port"], db=parsed["db"],
                         username=parsed["username"], password=parsed["password"],
                         ssl=parsed["tls"], socket_connect_timeout=CONNECT_TIMEOUT,
                         socket_timeout=SOCKET_TIMEOUT,
                         # two quick retries ride out a blip; redis-py's default retries take
                         # ~4 s to report a refused connection, in every worker
                         retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), 2))
    try:
        client.ping()
    except Exception as exc:  # ConnectionError, TimeoutError, AuthenticationError, ...
        _warn(f"example database {describe(url)} is unreachable ({type(exc).__name__}: {exc}); "
              f"this run continues with the local database {LOCAL_DIR}")
        return None
    return GuardedDatabase(RedisExampleDatabase(client), describe(url))


def _dir_database(path: Path, url: str, read_only: bool) -> ExampleDatabase | None:
    if path.exists() and not path.is_dir():
        raise UsageError(f"example database {url!r}: {str(path)!r} is a file, not a directory; "
                         "give a directory (it is created if missing)")
    if read_only:
        if not path.is_dir():
            _warn(f"example database {url} does not exist, so there is nothing to read; "
                  f"this run continues with the local database {LOCAL_DIR}")
            return None
        return DirectoryBasedExampleDatabase(path)
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not os.access(probe, os.R_OK | os.W_OK | os.X_OK):
        _warn(f"example database {url} is not writable (no write permission on "
              f"{str(probe)!r}); this run continues with the local database {LOCAL_DIR}")
        return None
    return DirectoryBasedExampleDatabase(path)


def open_database(url: str | None, *, read_only: bool = False
                  ) -> tuple[ExampleDatabase, str | None]:
    """The database for `url` and the URL it finally stands for: `url` itself, or None when
    it fell back to the local directory (after a warning).  See `database_from_url`."""
    if url is None or not url.strip():
        return local_database(), None
    parsed = parse_url(url)
    if parsed["kind"] == "dir":
        db = _dir_database(parsed["path"], url, read_only)
        if db is None:
            return local_database(), None
        if read_only:
            return MultiplexedDatabase(local_database(), ReadOnlyDatabase(db)), url
        return db, url
    remote = _redis_database(parsed, url)
    if remote is None:
        return local_database(), None
    if read_only:
        remote = ReadOnlyDatabase(remote)
    return MultiplexedDatabase(local_database(), remote), url


def database_from_url(url: str | None, *, read_only: bool = False) -> ExampleDatabase:
    """The example database that `url` names (see the module docstring for the forms).

    None or "" gives .hypothesis/examples.  With `read_only`, the named database is only
    read, and what is found is kept in the local directory.  An unreachable server gives a
    DatabaseWarning and the local database; a malformed URL raises UsageError.
    """
    return open_database(url, read_only=read_only)[0]


def _truthy(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")


def read_only_from_env() -> bool:
    value = os.environ.get(READ_ONLY_ENV_VAR)
    if value is not None and value.strip().lower() not in ("", "0", "1", "true", "false",
                                                          "yes", "no", "on", "off"):
        raise UsageError(f"{READ_ONLY_ENV_VAR}={value!r}: use 1 (read the shared database "
                         "only) or 0")
    return _truthy(value)


def database_from_env() -> ExampleDatabase | None:
    """The database that ACTVERIFY_DB (and ACTVERIFY_DB_READ_ONLY) name, or None when
    ACTVERIFY_DB is unset: then Hypothesis's default (.hypothesis/examples) stays."""
    url = os.environ.get(ENV_VAR)
    read_only = read_only_from_env()
    if url is None or not url.strip():
        return None
    try:
        return database_from_url(url, read_only=read_only)
    except UsageError as exc:
        raise UsageError(f"{ENV_VAR}: {exc}") from None


__all__ = ["database_from_url", "database_from_env", "open_database", "parse_url",
           "DatabaseWarning", "GuardedDatabase", "ENV_VAR", "READ_ONLY_ENV_VAR", "LOCAL_DIR"]
