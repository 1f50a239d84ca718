"""Settings read once from the environment (and a ``.env`` file in the working folder).

Every setting is ``TENURE_<NAME>``. A wrong value stops start-up with one line that names
the setting and says what is wrong (:class:`SettingsError`). Plugins declare their own
settings as a frozen dataclass and read them with :meth:`Settings.for_plugin`, under
``TENURE_<PLUGIN>_<NAME>``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

PREFIX = "TENURE_"
T = TypeVar("T")


class SettingsError(ValueError):
    """A setting has a value Tenure cannot use; the message names it and says why."""


def _parse(name: str, raw: str, kind: Any) -> Any:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw.strip() == "":
            return None
        return _parse(name, raw, inner[0])
    if kind is bool:
        value = raw.strip().lower()
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name}: expected true or false, got {raw!r}")
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a whole number, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if kind is datetime:
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            raise SettingsError(f"{name}: expected an ISO 8601 time, got {raw!r}") from None
        if parsed.tzinfo is None:
            raise SettingsError(f"{name}: the time needs a timezone, e.g. {raw}+00:00")
        return parsed
    if origin is tuple:
        (item,) = typing.get_args(kind)[:1]
        parts = [p.strip() for p in raw.split(",") if p.strip()]
        return tuple(_parse(name, p, item) for p in parts)
    return raw


def read_dataclass(cls: type[T], prefix: str, env: Mapping[str, str]) -> T:
    """Build the frozen dataclass ``cls`` from ``env``; field ``x_y`` reads ``PREFIX X_Y``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = prefix + field.name.upper()
        if key in env:
            values[field.name] = _parse(key, env[key], hints[field.name])
    instance = cls(**values)
    check = getattr(instance, "check", None)
    if check is not None:
        check()
    return instance


def load_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=value`` lines of a ``.env`` file; the process environment wins over it."""
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The core's settings. Numbers from DOMAIN.md are defaults here, never constants."""

    database_url: str = ""
    broker_url: str = ""
    plugins: str = "all"
    secret_key: str = ""
    environment: str = "development"
    host: str = "127.0.0.1"
    port: int = 8000
    currency: str = "USD"
    #: The business's time zone (IANA name): where a "day", "10:00" or a birthday falls.
    timezone: str = "UTC"
    #: Freezes the clock of every process at this moment (ISO 8601), to try rules over time.
    now: datetime | None = None
    # GraphQL limits: a request over any of these is refused with an error naming it.
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 2000
    max_page_size: int = 100
    max_complexity: int = 20000
    max_body_bytes: int = 1_000_000
    max_batch_size: int = 10
    graphiql: bool = True
    introspection: bool = True
    # Persisted documents (schema/documents.py): the manifest of the apps' operations by
    # SHA-256, and whether member tokens may run only those.
    persisted_documents: str = ""
    member_persisted_only: bool = False
    # Tokens and keys.
    member_token_ttl_seconds: int = 3600
    # A member's new e-mail address is confirmed by a link sent to it: your app's page for
    # it, with {token} (unset: the message carries the token itself), and how long it works.
    member_email_verify_url: str = ""
    member_email_verify_hours: int = 24
    # The outbox: how jobs and messages leave the business transaction.
    relay_interval_seconds: float = 1.0
    # How often a subscription (``events`` over graphql-transport-ws) looks for new events.
    subscription_poll_seconds: float = 1.0
    job_lease_seconds: int = 300
    job_max_attempts: int = 8
    job_backoff_seconds: float = 5.0
    # How long a handed-off entry may go unclaimed before the scheduler hands it on again
    # (its message was lost with a process or the broker).
    job_redispatch_seconds: float = 60.0
    job_concurrency: int = 4
    # On SIGTERM, how long running jobs may go on before they are stopped and their entries
    # released (due again at once, for another process).
    job_drain_seconds: float = 10.0
    webhook_timeout_seconds: float = 10.0
    # Outgoing webhooks (Standard Webhooks). After a failed attempt the next waits the
    # schedule's next delay (s, m, h or d), give or take the jitter (a share of it); when the
    # schedule runs out the delivery is dead. The default is the spec's: about 27 hours.
    webhook_retry_schedule: tuple[str, ...] = ("5s", "5m", "30m", "2h", "5h", "10h", "10h")
    webhook_retry_jitter: float = 0.1
    # How long a rotated-out secret still signs deliveries (beside the new one).
    webhook_secret_overlap_seconds: int = 86400
    # Targets in loopback, private, link-local, multicast or unspecified ranges are refused
    # (server-side request forgery) unless this is on; plain http is refused in production
    # unless TENURE_WEBHOOK_ALLOW_HTTP is on.
    webhook_allow_private_targets: bool = False
    webhook_allow_http: bool = False
    # Messages (core.messages): email over SMTP, the signed message webhook, quiet hours.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_tls: str = "off"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Tenure <noreply@localhost>"
    message_webhook_url: str = ""
    message_webhook_secret: str = ""
    message_channels: tuple[str, ...] = ("email",)
    message_default_locale: str = "en"
    message_quiet_start_hour: int | None = None
    message_quiet_end_hour: int | None = None
    message_max_attempts: int = 6
    db_pool_size: int = 10
    #: GraphQL requests a process runs at once; more wait their turn in arrival order
    #: (0: no limit, the database pool's queue decides, which lets late comers overtake).
    max_concurrent_requests: int = 16
    #: How long a request may wait for its turn before it is answered 503 UNAVAILABLE with
    #: Retry-After (a process that cannot keep up says so instead of queueing for minutes).
    request_queue_seconds: float = 30.0
    log_level: str = "INFO"
    #: ``json`` (one object per line, for log collectors) or ``text``.
    log_format: str = "text"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, env_file: Path | None = None) -> Settings:
        merged = dict(load_env_file(env_file or Path(".env")))
        merged.update(os.environ if env is None else env)
        return read_dataclass(cls, PREFIX, merged)._with_env(merged)

    def _with_env(self, env: Mapping[str, str]) -> Settings:
        object.__setattr__(self, "_env", dict(env))
        self.__dict__.pop("_plugin_settings", None)
        return self

    def check(self) -> None:
        if self.database_url and not self.database_url.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://", "sqlite://", "postgresql://")
        ):
            raise SettingsError(
                "TENURE_DATABASE_URL: use sqlite+aiosqlite:///path.db or "
                f"postgresql+asyncpg://user:password@host/db (got {self.database_url!r})"
            )
        if self.broker_url and not self.broker_url.startswith(("redis://", "rediss://", "amqp://")):
            raise SettingsError(
                f"TENURE_BROKER_URL: use redis://host:6379/0 or amqp://host (got {self.broker_url!r})"
            )
        if self.max_concurrent_requests < 0:
            raise SettingsError("TENURE_MAX_CONCURRENT_REQUESTS: 0 (no limit) or more "
                                f"(got {self.max_concurrent_requests})")
        if self.request_queue_seconds <= 0:
            raise SettingsError(f"TENURE_REQUEST_QUEUE_SECONDS: more than 0 (got {self.request_queue_seconds:g})")
        if self.log_format not in ("text", "json"):
            raise SettingsError(f"TENURE_LOG_FORMAT: json or text (got {self.log_format!r})")
        if self.environment not in ("development", "production", "test"):
            raise SettingsError(
                "TENURE_ENVIRONMENT: one of development, production, test "
                f"(got {self.environment!r})"
            )
        if self.environment == "production" and len(self.secret_key) < 32:
            raise SettingsError(
                "TENURE_SECRET_KEY: production needs a secret of at least 32 characters "
                "(member tokens and survey links are signed with it)"
            )
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise SettingsError(
                f"TENURE_CURRENCY: a three-letter ISO 4217 code such as USD (got {self.currency!r})"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"TENURE_TIMEZONE: an IANA time zone such as Europe/Paris or UTC (got {self.timezone!r})"
            ) from None
        if self.smtp_tls not in ("off", "starttls", "tls"):
            raise SettingsError(f"TENURE_SMTP_TLS: one of off, starttls, tls (got {self.smtp_tls!r})")
        for hour in ("message_quiet_start_hour", "message_quiet_end_hour"):
            value = getattr(self, hour)
            if value is not None and not 0 <= value <= 23:
                raise SettingsError(f"TENURE_{hour.upper()}: an hour from 0 to 23 (UTC), got {value}")
        self.webhook_retry_delays()  # a bad schedule stops start-up, naming the setting
        if self.message_webhook_secret.startswith("whsec_"):
            try:
                base64.b64decode(self.message_webhook_secret[6:], validate=True)
            except binascii.Error:
                raise SettingsError("TENURE_MESSAGE_WEBHOOK_SECRET: whsec_ must be followed by base64") from None
        if not 0 <= self.webhook_retry_jitter < 1:
            raise SettingsError(
                f"TENURE_WEBHOOK_RETRY_JITTER: a share from 0 to below 1, e.g. 0.1 (got {self.webhook_retry_jitter})"
            )
        if self.webhook_timeout_seconds <= 0:
            raise SettingsError(
                f"TENURE_WEBHOOK_TIMEOUT_SECONDS: seconds above 0 (got {self.webhook_timeout_seconds:g})")
        if self.webhook_secret_overlap_seconds < 0:
            raise SettingsError("TENURE_WEBHOOK_SECRET_OVERLAP_SECONDS: must be 0 or more")
        for name in ("max_depth", "max_aliases", "max_tokens", "max_page_size", "max_complexity"):
            if getattr(self, name) < 1:
                raise SettingsError(f"TENURE_{name.upper()}: must be at least 1")

    @property
    def resolved_database_url(self) -> str:
        """The database URL with the async driver named; unset means ``tenure.db`` here."""
        url = self.database_url or "sqlite+aiosqlite:///tenure.db"
        if url.startswith("sqlite://"):
            url = "sqlite+aiosqlite://" + url[len("sqlite://") :]
        elif url.startswith("postgresql://"):
            url = "postgresql+asyncpg://" + url[len("postgresql://") :]
        return url

    @property
    def signing_key(self) -> bytes:
        """The key that signs member tokens and links; a development default when unset."""
        return (self.secret_key or "tenure-development-secret-change-me").encode()

    def webhook_retry_delays(self) -> list[float]:
        """``TENURE_WEBHOOK_RETRY_SCHEDULE`` in seconds, one per retry."""
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        delays = []
        for part in self.webhook_retry_schedule:
            number, unit = part[:-1], part[-1:].lower()
            try:
                seconds = float(number) * units[unit]
            except (KeyError, ValueError):
                raise SettingsError(
                    "TENURE_WEBHOOK_RETRY_SCHEDULE: delays such as 5s,5m,30m,2h,1d separated by commas "
                    f"(got {part!r})"
                ) from None
            if seconds < 0:
                raise SettingsError(f"TENURE_WEBHOOK_RETRY_SCHEDULE: a delay cannot be negative (got {part!r})")
            delays.append(seconds)
        return delays

    @property
    def zone(self) -> ZoneInfo:
        """The business time zone, as an object."""
        return ZoneInfo(self.timezone)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def enabled_plugins(self) -> tuple[str, ...] | None:
        """Names from ``TENURE_PLUGINS``; ``None`` means every installed plugin."""
        value = self.plugins.strip()
        if value in ("all", "*"):
            return None
        return tuple(p.strip() for p in value.split(",") if p.strip())

    def for_plugin(self, plugin: str, cls: type[T]) -> T:
        """A plugin's settings, read from ``TENURE_<PLUGIN>_<FIELD>``. Read once per settings
        object: resolvers ask for them on every row, and reading evaluates type hints."""
        env: Mapping[str, str] | None = getattr(self, "_env", None)
        if env is None:
            return read_dataclass(cls, f"{PREFIX}{plugin.upper()}_", os.environ)
        cache: dict[tuple[str, type], Any] = self.__dict__.setdefault("_plugin_settings", {})
        if (plugin, cls) not in cache:
            cache[plugin, cls] = read_dataclass(cls, f"{PREFIX}{plugin.upper()}_", env)
        found: T = cache[plugin, cls]
        return found

    def job_schedules(self) -> dict[str, str]:
        """Schedules set by ``TENURE_SCHEDULE_<JOB>`` (``TENURE_SCHEDULE_NPS_SEND_DUE="*/5 * * * *"``,
        or ``off``), keyed by the spelling of the job's name in the variable; the plugin manager
        matches them to its jobs, so every schedule is a setting whatever the plugin declares."""
        env: Mapping[str, str] = getattr(self, "_env", os.environ)
        prefix = f"{PREFIX}SCHEDULE_"
        return {key[len(prefix):]: value.strip() for key, value in env.items() if key.startswith(prefix)}

    def replace(self, **changes: Any) -> Settings:
        env = getattr(self, "_env", {})
        return dataclasses.replace(self, **changes)._with_env(env)
