"""``tenure import`` and ``tenure export``: customers, orders and interactions from and to
CSV or JSON Lines."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from tenure.core.commands import load_enabled_plugins, load_settings, require_tables, upgrade_database


@click.command("import")
@click.argument("kind", type=click.Choice(["customers", "orders", "interactions"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Default: from the extension (.csv, .jsonl, .ndjson).")
@click.option("--map", "mapping", multiple=True, metavar="COLUMN=FIELD",
              help="Read FIELD from COLUMN (repeat): --map E-Mail=email.")
@click.option("--identity-kind", default="external", show_default=True,
              help="The identity kind external_id and customer_external_id are (crm, shop ...).")
@click.option("--dry-run", is_flag=True, help="Check every row through the services, write nothing.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write rejected rows (line, reason) to this CSV file.")
def import_command(kind: str, file: Path, fmt: str | None, mapping: tuple[str, ...], identity_kind: str,
                   dry_run: bool, report_path: Path | None) -> None:
    """Import customers, orders or interactions from CSV or JSON Lines, each row through the
    same rules as the API. Rows already imported are skipped, so a stopped run resumes and a
    second run changes nothing. Exits 1 when rows were rejected."""
    from tenure.core.db import Database
    from tenure.core.import_files import ImportError_, ImportProgress, open_rows, parse_mapping
    from tenure.core.imports import import_file

    settings = load_settings()
    plugins = load_enabled_plugins(settings)
    try:
        stream = open_rows(file, kind, fmt, parse_mapping(mapping, kind))
    except ImportError_ as error:
        raise click.ClickException(str(error)) from None

    if settings.resolved_database_url.startswith("sqlite"):
        upgrade_database(settings, plugins)  # the embedded database migrates itself, as `tenure serve` does

    async def run() -> Any:
        db = Database(settings.resolved_database_url)
        try:
            await require_tables(db)
            return await import_file(db, settings, plugins, stream, identity_kind=identity_kind, dry_run=dry_run,
                                     progress=ImportProgress(kind, sys.stderr))
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except ImportError_ as error:
        raise click.ClickException(str(error)) from None
    for line in report.lines():
        click.echo(line)
    shown = report.rejected[:20]
    for item in shown:
        click.echo(f"  line {item.line}: {item.reason}", err=True)
    if len(report.rejected) > len(shown):
        click.echo(f"  ... and {len(report.rejected) - len(shown)} more", err=True)
    if report_path is not None and report.rejected:
        report.rejected.save(report_path)
        click.echo(f"rejected rows written to {report_path}, with their reasons: fix them there and import that file")
    report.rejected.close()
    if dry_run:
        click.echo("dry run: nothing was written")
    if report.rejected:
        sys.exit(1)


@click.command("export")
@click.argument("kind", type=click.Choice(["customers", "orders"]))
@click.argument("file", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default=None,
              help="Default: from the extension (.csv, .jsonl, .ndjson).")
@click.option("--identity-kind", default="external", show_default=True,
              help="The identity kind written as external_id / customer_external_id.")
def export_command(kind: str, file: Path, fmt: str | None, identity_kind: str) -> None:
    """Export customers or orders to CSV or JSON Lines, in the columns `tenure import` reads."""
    from tenure.core.db import Database
    from tenure.core.exports import count, export
    from tenure.core.import_files import ImportError_, file_format

    settings = load_settings()
    try:
        chosen = file_format(file, fmt)
    except ImportError_ as error:
        raise click.ClickException(str(error)) from None

    async def run() -> int:
        db = Database(settings.resolved_database_url)
        try:
            total = await count(db, kind)
            with click.progressbar(length=total, label=f"exporting {kind}", file=sys.stderr) as bar:
                return await export(db, kind, file, chosen, identity_kind, progress=bar.update)
        finally:
            await db.dispose()

    written = asyncio.run(run())
    click.echo(f"{written} {kind} written to {file}")
