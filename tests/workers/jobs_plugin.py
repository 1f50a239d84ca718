"""A plugin whose jobs the outbox and scheduler tests drive: one that always fails, one
with a visible effect (an event in the feed), one that waits for the test to let it
finish, and one on a cron schedule."""

from __future__ import annotations

import asyncio
from typing import Any

from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec, PluginInfo
from tenure.core.plugins import hookimpl

NAME = "testjobs"
#: The slow job signals ``started`` once its write is made, then waits for ``release``.
gate: dict[str, asyncio.Event] = {}


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name=NAME, version="1.0", summary="Jobs for the outbox tests")


async def always_fails(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await ctx.publish("testjobs.tried", source=NAME, summary="this write is rolled back")
    raise RuntimeError(f"the partner API is down (payload {payload})")


async def effect(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await ctx.publish("testjobs.done", source=NAME, data=payload)


async def slow(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    await ctx.publish("testjobs.done", source=NAME, data=payload)
    gate["started"].set()
    await gate["release"].wait()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    return [
        JobSpec("testjobs.always_fails", always_fails, max_attempts=3),
        JobSpec("testjobs.effect", effect),
        JobSpec("testjobs.slow", slow),
        JobSpec("testjobs.every_five_minutes", effect, schedule="*/5 * * * *"),
    ]
