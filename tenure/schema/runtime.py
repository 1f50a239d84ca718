"""What one server process holds, apart from the app that serves it: the request context and
the server both read it, so it sits below them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenure.core.db import Database
from tenure.core.plugins import PluginManager
from tenure.core.settings import Settings
from tenure.schema.metrics import Metrics


@dataclass
class Runtime:
    """What one server process holds: settings, plugins, the database, and the way queued
    work is handed to whoever runs it (it satisfies ``tenure.workers.runner.Runtime``)."""

    settings: Settings
    plugins: PluginManager
    db: Database
    dispatch: Callable[[list[int]], Awaitable[None]]
    metrics: Metrics = field(default_factory=Metrics)
