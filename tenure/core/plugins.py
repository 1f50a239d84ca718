"""The plugin manager: finds plugins, switches them on or off, and answers typed questions
about what the enabled ones contribute.

Every plugin is found through the entry-point group ``tenure.plugins``: the built-in ones
(the packages under ``plugins/``) are the entries of the ``tenure`` distribution itself,
third-party ones those of any other installed distribution. The core's own jobs and handlers
are registered the same way, as the plugin named ``core``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy
from croniter import croniter

from tenure.core import hookspecs
from tenure.core.contributions import (
    DemoData,
    EventHandler,
    Forecaster,
    InvariantCheck,
    JobSpec,
    PluginInfo,
    SchemaContribution,
)
from tenure.core.settings import Settings, SettingsError

if TYPE_CHECKING:
    import click

    from tenure.core.events import DomainEvent

hookimpl = pluggy.HookimplMarker("tenure")
ENTRY_POINT_GROUP = "tenure.plugins"
CORE = "core"


@dataclass(frozen=True)
class Candidate:
    """An installed plugin, on or off."""

    info: PluginInfo
    module: Any
    origin: str  # "built-in" or the distribution that provides it


DISTRIBUTION = "tenure"


def _distribution(ep: EntryPoint) -> str:
    return ep.dist.name if ep.dist else ep.value


def builtin_candidates() -> list[Candidate]:
    """The plugins that ship with Tenure (the entries of its own distribution), by name."""
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if _distribution(ep) == DISTRIBUTION:
            module = ep.load()
            found.append(Candidate(module.tenure_plugin_info(), module, "built-in"))
    return sorted(found, key=lambda c: c.info.name)


def entry_point_candidates() -> list[Candidate]:
    """The plugins that other installed distributions provide."""
    found = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = _distribution(ep)
        if dist != DISTRIBUTION:
            module = ep.load()
            found.append(Candidate(module.tenure_plugin_info(), module, dist))
    return found


def installed_plugins() -> list[Candidate]:
    """Every plugin that could be switched on, built-in first."""
    return builtin_candidates() + entry_point_candidates()


def schedule_variable(job: str) -> str:
    """How ``TENURE_SCHEDULE_<JOB>`` spells a job's name: ``nps.send_due`` is ``NPS_SEND_DUE``."""
    return job.upper().replace(".", "_")


class PluginManager:
    """The enabled plugins, with one typed method per registration hook."""

    def __init__(self, enabled: Iterable[Candidate], installed: Iterable[Candidate] = (),
                 schedules: Mapping[str, str] | None = None) -> None:
        from tenure.core import builtin

        self.schedules = dict(schedules or {})
        self.pm = pluggy.PluginManager("tenure")
        self.pm.add_hookspecs(hookspecs)
        self.installed = list(installed)
        self.pm.register(builtin, name=CORE)
        self._infos: dict[str, PluginInfo] = {CORE: builtin.tenure_plugin_info()}
        for candidate in enabled:
            if candidate.info.hookspecs is not None:
                self.pm.add_hookspecs(candidate.info.hookspecs)
            self.pm.register(candidate.module, name=candidate.info.name)
            self._infos[candidate.info.name] = candidate.info

    @property
    def hook(self) -> Any:
        """The raw pluggy hook relay, for hooks that plugins offer each other."""
        return self.pm.hook

    def names(self) -> list[str]:
        """Enabled plugins, ``core`` first."""
        return list(self._infos)

    def is_enabled(self, name: str) -> bool:
        return name in self._infos

    def info(self, name: str) -> PluginInfo:
        return self._infos[name]

    def _per_plugin(self, hook_name: str) -> list[tuple[str, Any]]:
        """Call a registration hook on each plugin in turn, keeping who returned what."""
        results = []
        for name in self.names():
            plugin = self.pm.get_plugin(name)
            impl = getattr(plugin, hook_name, None)
            if impl is not None:
                value = impl()
                if value is not None:
                    results.append((name, value))
        return results

    @cached_property
    def schema_contributions(self) -> list[tuple[str, SchemaContribution]]:
        return self._per_plugin("tenure_schema")

    @cached_property
    def jobs(self) -> dict[str, JobSpec]:
        jobs: dict[str, JobSpec] = {}
        for plugin, specs in self._per_plugin("tenure_jobs"):
            for spec in specs:
                if not spec.name.startswith(f"{plugin}."):
                    raise ValueError(f"plugin {plugin}: job {spec.name!r} must be named {plugin}.*")
                if spec.name in jobs:
                    raise ValueError(f"two jobs are named {spec.name!r}")
                jobs[spec.name] = spec
        by_variable = {schedule_variable(name): name for name in jobs}
        for variable, schedule in self.schedules.items():
            if variable not in by_variable:
                raise SettingsError(f"TENURE_SCHEDULE_{variable}: no enabled job is spelled so "
                                    f"(jobs: {', '.join(sorted(by_variable))})")
            name = by_variable[variable]
            jobs[name] = dataclasses.replace(jobs[name], schedule=None if schedule == "off" else schedule)
        return jobs

    @cached_property
    def _handlers(self) -> list[EventHandler]:
        handlers = [h for _, hs in self._per_plugin("tenure_event_handlers") for h in hs]
        return sorted(handlers, key=lambda h: h.priority)

    def handlers_for(self, event_type: type[DomainEvent]) -> list[EventHandler]:
        """The handlers of events of ``event_type``, in ascending priority."""
        return [h for h in self._handlers if issubclass(event_type, h.event)]

    @cached_property
    def forecasters(self) -> list[tuple[str, Forecaster]]:
        """Each enabled plugin's forecasters, with the plugin's name."""
        return [(name, f) for name, found in self._per_plugin("tenure_forecasts") for f in found]

    @cached_property
    def demo_parts(self) -> list[tuple[str, DemoData]]:
        """Each enabled plugin's part of ``tenure demo``, with the plugin's name."""
        return self._per_plugin("tenure_demo")

    @cached_property
    def checks(self) -> list[tuple[str, InvariantCheck]]:
        return [(p, c) for p, cs in self._per_plugin("tenure_checks") for c in cs]

    def cli_commands(self) -> list[click.Command]:
        return [c for _, cs in self._per_plugin("tenure_cli_commands") for c in cs]

    def migration_locations(self) -> dict[str, str]:
        """Alembic version folders of every *installed* plugin (enabled or not), so that a
        database migrated while a plugin was on can still be read after it is turned off."""
        locations = {}
        for candidate in self.installed:
            if candidate.info.migrations:
                locations[candidate.info.name] = candidate.info.migrations
        for name, info in self._infos.items():
            if info.migrations:
                locations[name] = info.migrations
        return locations


def load_plugins(settings: Settings, extra: Iterable[ModuleType] = ()) -> PluginManager:
    """Build the manager for ``TENURE_PLUGINS``: every installed plugin, or those it names.

    ``extra`` registers plugin modules that are not installed (tests use this).
    """
    installed = installed_plugins() + [
        Candidate(m.tenure_plugin_info(), m, "given") for m in extra
    ]
    by_name: dict[str, Candidate] = {}
    for candidate in installed:
        name = candidate.info.name
        if name == CORE or name in by_name:
            raise SettingsError(
                f"two installed plugins are named {name!r} ({candidate.origin} and "
                f"{by_name[name].origin if name in by_name else 'the core'}); uninstall one"
            )
        by_name[name] = candidate
    wanted = settings.enabled_plugins()
    if wanted is None:
        wanted = tuple(by_name)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SettingsError(
            f"TENURE_PLUGINS: no plugin named {', '.join(unknown)} "
            f"(installed: {', '.join(by_name) or 'none'})"
        )
    for name in wanted:
        missing = [r for r in by_name[name].info.requires if r not in wanted]
        if missing:
            raise SettingsError(
                f"TENURE_PLUGINS: {name} needs {', '.join(missing)}; turn it on or turn {name} off"
            )
    manager = PluginManager([by_name[n] for n in wanted], installed, schedules=settings.job_schedules())
    for spec in manager.jobs.values():  # a wrong schedule stops start-up, naming its setting
        if spec.schedule is not None and not croniter.is_valid(spec.schedule):
            raise SettingsError(f"TENURE_SCHEDULE_{schedule_variable(spec.name)}: {spec.schedule!r} is not "
                                "a cron expression (minute hour day month weekday, UTC), nor off")
    return manager
