"""What stands between a process and its work: the database (its driver, reachable, the
credentials, the database itself, migrated to the enabled plugins' heads) and the broker.

``tenure serve``, ``worker`` and ``scheduler`` call :func:`preflight` before they begin: a
problem stops them with one line that names the setting and the fix, or, when they were told
to wait (``--wait``), is logged once per attempt while they wait with exponential backoff.
:func:`database_problem` puts the same words on a failure met later (``/readyz``, the
scheduler's log, the API's 503), so a database that goes away says why in every place.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from sqlalchemy import make_url
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from tenure.core.plugins import PluginManager
    from tenure.core.settings import Settings

log = logging.getLogger("tenure.startup")

#: Kinds of problem; ``/readyz`` reports the kind as its ``reason``.
DRIVER, UNREACHABLE, REFUSED, NOT_MIGRATED, BROKER = "driver", "unreachable", "refused", "not_migrated", "broker"
#: How long one connection attempt may take at start-up.
CONNECT_TIMEOUT = 5.0
#: The longest pause between two attempts while waiting.
MAX_PAUSE = 30.0


@dataclass(frozen=True)
class Problem:
    """Why a process cannot do its work, in one line that says what to do."""

    kind: str
    message: str
    #: Whether waiting may mend it (a database that starts later); a missing driver will not.
    transient: bool = True


class StartupError(Exception):
    """Start-up stopped on a problem; the message is the problem's one line."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _where(url: str) -> str:
    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, what SQLAlchemy wrapped (``.orig``), and what it was raised from."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)


def database_problem(error: BaseException, url: str = "") -> Problem | None:
    """The problem ``error`` shows with the database (unreachable, credentials refused, no
    such database, not migrated), in words naming ``TENURE_DATABASE_URL``; ``None`` when the
    error is not about reaching the database (a query that is wrong, a bug)."""
    where = _where(url) if url and not url.startswith("sqlite") else "the database server"
    for cause in _causes(error):
        state = getattr(cause, "sqlstate", None)  # asyncpg's errors carry PostgreSQL's SQLSTATE
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        if state == "28P01":
            return Problem(REFUSED, f"TENURE_DATABASE_URL: {text} at {where}: check the password")
        if state == "28000":
            return Problem(REFUSED, f"TENURE_DATABASE_URL: {text} at {where}: check the user name, and that the "
                                    "server's pg_hba.conf lets it connect from here")
        if state == "3D000":
            name = make_url(url).database if url else "?"
            return Problem(REFUSED, f"TENURE_DATABASE_URL: {text} at {where}: create it (createdb {name}) "
                                    "or correct the name")
        if state == "42P01" or (isinstance(cause, sqlite3.OperationalError) and "no such table" in text):
            return Problem(NOT_MIGRATED, f"the database is not migrated ({text}): run `tenure migrate`")
        if state in ("57P03", "53300"):  # starting up, shutting down, or out of connection slots
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: the database at {where} does not accept "
                                        f"connections now ({text}): wait for it, or start with --wait")
        if state is not None and (state.startswith("08") or state in ("57P01", "57P02")):
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: the connection to {where} was lost ({text}): "
                                        "check that PostgreSQL is running and reachable")
        if isinstance(cause, sqlite3.OperationalError) and "unable to open" in text:
            path = make_url(url).database if url else "?"
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: the SQLite file {path} cannot be opened ({text}): "
                                        "check that its folder exists and is writable")
        if isinstance(cause, socket.gaierror):
            host = make_url(url).host if url else "?"
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: the host {host!r} cannot be found ({cause.strerror}): "
                                        "check the host name")
        if isinstance(cause, TimeoutError):
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: {where} did not answer in time: check the host, "
                                        "the port and the firewall between them")
        if isinstance(cause, ConnectionRefusedError):
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: nothing answers at {where} (connection refused): "
                                        "check the host and port, and that PostgreSQL is running")
        if isinstance(cause, OSError):
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: cannot connect to {where} "
                                        f"({cause.strerror or text}): check the host and port")
        if type(cause).__module__.startswith("asyncpg") and type(cause).__name__ in (
                "ConnectionDoesNotExistError", "ConnectionFailureError", "InterfaceError"):
            return Problem(UNREACHABLE, f"TENURE_DATABASE_URL: the connection to {where} was lost ({text})")
    return None


def driver_problem(url: str) -> Problem | None:
    """The database driver the URL names, when it cannot be imported."""
    postgres = not url.startswith("sqlite")
    module = "asyncpg" if postgres else "aiosqlite"
    try:
        importlib.import_module(module)
    except ImportError:
        if postgres:
            return Problem(DRIVER, "TENURE_DATABASE_URL names PostgreSQL but its driver is not installed: "
                                   "pip install 'tenure[postgres]'", transient=False)
        return Problem(DRIVER, "TENURE_DATABASE_URL names SQLite but its driver is not installed: "
                               "pip install aiosqlite", transient=False)
    return None


@cache
def _ancestry(settings: Settings, plugins: PluginManager) -> tuple[dict[str, str], Any]:
    from alembic.script import ScriptDirectory

    from tenure.core.migrate import alembic_config, heads_by_branch

    return heads_by_branch(settings, plugins), ScriptDirectory.from_config(alembic_config(settings, plugins))


def missing_revisions(settings: Settings, plugins: PluginManager, current: list[str]) -> dict[str, list[str]]:
    """By branch (core and each enabled plugin), the revisions not yet applied to a
    database whose ``alembic_version`` holds ``current``; empty when it is up to date."""
    heads, script = _ancestry(settings, plugins)
    walk = script.revision_map.iterate_revisions
    known = [rev for rev in current if rev in {r.revision for r in script.walk_revisions()}]
    applied = {r.revision for r in walk(tuple(known), "base", implicit_base=True)} if known else set()
    missing: dict[str, list[str]] = {}
    for branch, head in heads.items():
        if head not in applied:
            missing[branch] = sorted(r.revision for r in walk((head,), "base", implicit_base=True)
                                     if r.revision not in applied and branch in (r.branch_labels or ()))
    return missing


def not_migrated(missing: dict[str, list[str]], current: list[str]) -> Problem:
    if not current:
        return Problem(NOT_MIGRATED, "the database is not migrated (no revision of Tenure's is applied to it): "
                                     "run `tenure migrate`")
    parts = []
    for branch, revisions in missing.items():
        shown = ", ".join(revisions[:2]) + (f" and {len(revisions) - 2} more" if len(revisions) > 2 else "")
        parts.append(f"{branch} {shown}" if shown else branch)
    return Problem(NOT_MIGRATED, "the database is not migrated to the enabled plugins' heads "
                                 f"(missing: {'; '.join(parts)}): run `tenure migrate`")


async def current_revisions(connection: Any) -> list[str]:
    """What ``alembic_version`` holds (nothing when the table is not there)."""
    from tenure.core.migrate import _quiet_alembic  # before alembic: importing it quiets alembic's import-time notes

    _quiet_alembic()

    def read(sync: Any) -> list[str]:
        from alembic.migration import MigrationContext

        return list(MigrationContext.configure(sync).get_current_heads())

    return await connection.run_sync(read)


async def probe_database(settings: Settings, plugins: PluginManager, *, migrated: bool = True) -> Problem | None:
    """Connect once (with a short timeout) and, when ``migrated``, compare the database's
    revisions with the enabled plugins' heads."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    url = settings.resolved_database_url
    problem = driver_problem(url)
    if problem is not None:
        return problem
    connect_args: dict[str, Any] = {"timeout": CONNECT_TIMEOUT}
    engine = create_async_engine(url, poolclass=NullPool, connect_args=connect_args)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            if not migrated:
                return None
            current = await current_revisions(connection)
            missing = missing_revisions(settings, plugins, current)
            return not_migrated(missing, current) if missing else None
    except Exception as error:
        found = database_problem(error, url)
        if found is None:
            raise
        return found
    finally:
        await engine.dispose()


def broker_problem(url: str) -> Problem | None:
    """Whether the broker answers: a Redis PING, or an AMQP connection opened and closed."""
    if not url:
        return None
    parsed = make_url(url.replace("rediss://", "redis://", 1)) if url.startswith("redis") else None
    if parsed is not None:
        where = f"{parsed.host or 'localhost'}:{parsed.port or 6379}"
        try:
            import redis
        except ImportError:
            return Problem(DRIVER, "TENURE_BROKER_URL names Redis but its client is not installed: "
                                   "pip install 'tenure[redis]'", transient=False)
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT)
        try:
            client.ping()
        except redis.AuthenticationError as error:
            return Problem(BROKER, f"TENURE_BROKER_URL: Redis at {where} refused the credentials ({error}): "
                                   "check the password")
        except redis.ResponseError as error:
            if "NOAUTH" in str(error):
                return Problem(BROKER, f"TENURE_BROKER_URL: Redis at {where} asks for a password: give it in the "
                                       "URL, redis://:password@host:6379/0")
            return Problem(BROKER, f"TENURE_BROKER_URL: Redis at {where} answered {error}")
        except (redis.ConnectionError, redis.TimeoutError) as error:
            return Problem(BROKER, f"TENURE_BROKER_URL: nothing answers at {where} ({error}): check the host "
                                   "and port, and that Redis is running")
        finally:
            client.close()
        return None
    try:
        import pika
    except ImportError:
        return Problem(DRIVER, "TENURE_BROKER_URL names RabbitMQ but its client is not installed: "
                               "pip install 'dramatiq[rabbitmq]'", transient=False)
    parameters = pika.URLParameters(url)
    parameters.socket_timeout = CONNECT_TIMEOUT
    try:
        pika.BlockingConnection(parameters).close()
    except Exception as error:  # pika raises many kinds (AMQPConnectionError, ProbableAuthenticationError ...)
        return Problem(BROKER, f"TENURE_BROKER_URL: cannot connect to RabbitMQ at {parameters.host}:"
                               f"{parameters.port} ({type(error).__name__} {error}): check the URL, the credentials "
                               "and that RabbitMQ is running")
    return None


def find_problem(settings: Settings, plugins: PluginManager, *, migrated: bool = True,
                 broker: bool = True) -> Problem | None:
    """The first thing wrong with the database, then the broker; ``None`` when all answer."""
    problem = asyncio.run(probe_database(settings, plugins, migrated=migrated))
    if problem is None and broker:
        problem = broker_problem(settings.broker_url)
    return problem


def preflight(settings: Settings, plugins: PluginManager, *, wait: float | None = None, migrated: bool = True,
              broker: bool = True, sleep: Callable[[float], None] = time.sleep) -> None:
    """Return once the database (and the broker, when set) can serve this process, or raise
    :class:`StartupError`. ``wait`` seconds (``math.inf``: without end) are spent trying
    again, one log line per attempt, pausing 1, 2, 4 ... up to 30 s between attempts."""
    started = time.monotonic()
    pause = 1.0
    attempt = 0
    while True:
        attempt += 1
        problem = find_problem(settings, plugins, migrated=migrated, broker=broker)
        if problem is None:
            if attempt > 1:
                log.info("the database%s answers now (after %d attempts); starting",
                         " and the broker" if broker and settings.broker_url else "", attempt)
            return
        left = (wait or 0) - (time.monotonic() - started)
        if wait is None or not problem.transient:
            raise StartupError(problem)
        if left <= 0:
            raise StartupError(Problem(problem.kind, f"{problem.message} (waited {wait:.0f} s)", problem.transient))
        delay = min(pause, left, MAX_PAUSE)
        log.warning("waiting (attempt %d): %s; next try in %s s", attempt, problem.message,
                    f"{delay:.0f}" if delay >= 1 else f"{delay:.1f}")
        sleep(delay)
        pause = min(pause * 2, MAX_PAUSE)

