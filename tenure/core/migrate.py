"""Database migrations with alembic: the core's revisions on branch ``core``, each plugin's
on a branch named after it, all located through alembic's own ``version_locations``.

``migrate`` brings the database to the heads of the core and the *enabled* plugins
(``upgrade core@head loyalty@head ...``; a bare ``head`` fails with several branches).
The version folders of installed but disabled plugins stay known, so a database migrated
while a plugin was on still opens after it is switched off.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
from pathlib import Path
from typing import Any

# Alembic announces each of its extension modules at INFO when first imported; only the
# revisions matter, so this comes before the imports below.
logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.autogenerate import compare_metadata  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from alembic.util import CommandError  # noqa: E402
from sqlalchemy.ext.asyncio import create_async_engine  # noqa: E402

import tenure.migrations  # noqa: E402
from tenure.core.db import Base  # noqa: E402
from tenure.core.plugins import PluginManager  # noqa: E402
from tenure.core.settings import Settings  # noqa: E402


class MigrationError(Exception):
    """The database cannot be brought up to date; the message says why and what to do."""


def resolve_location(location: str) -> str:
    """``package:folder`` (or ``package``) to a filesystem path."""
    package, _, folder = location.partition(":")
    module = importlib.import_module(package)
    base = Path(module.__file__ or "").parent
    return str(base / folder) if folder else str(base)


def alembic_config(settings: Settings, plugins: PluginManager, *, enabled_only: bool = False) -> Config:
    """``enabled_only`` leaves out the revisions of installed plugins that are off (writing
    a revision needs the database at every head alembic knows)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(tenure.migrations.__file__).parent))
    cfg.set_main_option("path_separator", "os")
    found = plugins.migration_locations()
    if enabled_only:
        found = {name: loc for name, loc in found.items() if plugins.is_enabled(name)}
    locations = [resolve_location(loc) for loc in found.values()]
    cfg.set_main_option("version_locations", os.pathsep.join(locations))
    cfg.attributes["tenure_enabled"] = [n for n in plugins.names() if n != "core"]
    cfg.attributes["tenure_url"] = settings.resolved_database_url
    return cfg


def targets(plugins: PluginManager) -> list[str]:
    return [f"{name}@head" for name in plugins.names() if plugins.info(name).migrations]


def first_paragraph(doc: str | None, limit: int = 200) -> str:
    """A revision message's first paragraph on one line (the summary sentence)."""
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


class StepLines(logging.Filter):
    """One line per migration step: alembic logs ``Running upgrade a -> b, <docstring>``
    with the revision's whole (often multi-line) docstring; keep its first paragraph, and
    drop the per-branch "Context impl" and "Will assume ... DDL" notes."""

    NOTES = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == "Running %s" and record.args and isinstance(record.args, tuple):
            step = record.args[0]
            short = getattr(step, "short_log", None)
            if short is not None:
                summary = first_paragraph(getattr(step, "doc", None))
                record.args = (" ".join(str(short).split()) + (f", {summary}" if summary else ""),)
            return True
        return not (isinstance(record.msg, str) and record.msg.startswith(self.NOTES))


def _quiet_alembic() -> None:
    steps = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, StepLines) for f in steps.filters):
        steps.addFilter(StepLines())


def upgrade(settings: Settings, plugins: PluginManager, *, skip_unstarted: bool = False) -> list[str]:
    """Apply every pending revision of the core and the enabled plugins. ``skip_unstarted``
    passes over a plugin whose branch has no revision yet (``tenure migrations new`` is
    about to write its first one)."""
    _quiet_alembic()
    cfg = alembic_config(settings, plugins)
    done = targets(plugins)
    if skip_unstarted:
        labels = {label for rev in ScriptDirectory.from_config(cfg).walk_revisions() for label in rev.branch_labels}
        done = [t for t in done if t.split("@")[0] in labels]
    for target in done:
        try:
            command.upgrade(cfg, target)
        except CommandError as error:
            if "Can't locate revision" not in str(error):
                raise
            raise MigrationError(
                f"{error}: the database was migrated with a plugin that is not installed any more. "
                "Install that plugin again (it may stay switched off in TENURE_PLUGINS), or, once its "
                "tables are dropped, delete its row from the alembic_version table"
            ) from None
    return done


def heads_by_branch(settings: Settings, plugins: PluginManager) -> dict[str, str]:
    script = ScriptDirectory.from_config(alembic_config(settings, plugins))
    found = {}
    for name in plugins.names():
        if plugins.info(name).migrations:
            found[name] = script.get_revision(f"{name}@head").revision
    return found


def differences(settings: Settings, plugins: PluginManager) -> list[Any]:
    """What autogenerate would write: empty when the models and the migrated database agree."""
    enabled = [n for n in plugins.names() if n != "core"]

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            if reflected and compare_to is None:
                table = Base.metadata.tables.get(name or "")
                return name != "alembic_version" and (table is None or table.info.get("plugin") in (None, *enabled))
            return obj.info.get("plugin") in (None, *enabled)
        return True

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"include_object": include, "compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async def run() -> list[Any]:
        engine = create_async_engine(settings.resolved_database_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def new_revision(settings: Settings, plugins: PluginManager, plugin: str, message: str) -> str:
    """Autogenerate a revision of ``plugin``'s tables on its branch (``tenure migrations
    new``). The database must be at the heads already; the first revision of a plugin
    starts its branch and depends on the core's head."""
    info = plugins.info(plugin)
    if not info.migrations:
        raise ValueError(f"plugin {plugin} declares no migrations folder in its PluginInfo")
    cfg = alembic_config(settings, plugins, enabled_only=True)
    cfg.attributes["tenure_only"] = plugin
    script = ScriptDirectory.from_config(cfg)
    folder = resolve_location(info.migrations)
    Path(folder).mkdir(parents=True, exist_ok=True)
    try:
        head = script.get_revision(f"{plugin}@head")
    except Exception:
        head = None
    kwargs: dict[str, Any] = {"version_path": folder}
    if head is None:
        core_head = script.get_revision("core@head")
        assert core_head is not None
        kwargs.update(head="base", branch_label=plugin, depends_on=core_head.revision,
                      rev_id=f"{plugin}_0001")
    else:
        kwargs.update(head=f"{plugin}@head")
    result = command.revision(cfg, message=message, autogenerate=True, **kwargs)
    return str(getattr(result, "path", result))
