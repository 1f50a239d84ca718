"""NPS and CSAT surveys: every rule of the plugin.

For other plugins: :func:`latest_scores` gives each customer's latest answer (the churn
plugin reads it as a warning sign); it takes a session and customer ids and costs one query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenure.core import validation as v
from tenure.core.auth import AuthenticationError, sign_token, verify_token
from tenure.core.config_cache import CachedConfig
from tenure.core.context import ServiceContext
from tenure.core.db import insert_ignoring_conflicts
from tenure.core.errors import NotFound, UserError
from tenure.core.events import CustomersMerged, OrderRecorded
from tenure.core.messages import send_message
from tenure.core.models import Customer, CustomerTag, Message, MessageStatus
from tenure.core.reads import Read
from tenure.core.services.tasks import open_task
from tenure.plugins.nps.models import Invitation, Response, Survey

PLUGIN = "nps"
SCALES = {"nps": (0, 10), "csat": (1, 5)}
TRIGGERS = ("after_order", "schedule", "manual")
TOKEN_PURPOSE = "survey"
SEND_JOB = "nps.send_due"


@dataclass(frozen=True)
class NpsSettings:
    """``TENURE_NPS_<FIELD>``."""

    throttle_days: int = 90
    link_ttl_days: int = 30
    survey_url: str = "http://127.0.0.1:8000/survey?token={token}"
    batch_size: int = 500
    follow_up_days: int = 2

    def check(self) -> None:
        if "{token}" not in self.survey_url:
            from tenure.core.settings import SettingsError

            raise SettingsError("TENURE_NPS_SURVEY_URL: must contain {token}, where the link's token goes")


def settings_of(ctx: ServiceContext) -> NpsSettings:
    return ctx.settings.for_plugin(PLUGIN, NpsSettings)


def category(scale: str, score: int) -> str:
    if scale == "nps":
        return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
    return "satisfied" if score >= 4 else "neutral" if score == 3 else "dissatisfied"


def needs_follow_up(scale: str, score: int) -> bool:
    return category(scale, score) in ("detractor", "dissatisfied")


def _days(value: int | None, field: str, *, minimum: int = 0) -> int | None:
    if value is not None and not minimum <= value <= 3650:
        raise UserError(f"must be from {minimum} to 3650 days", field, "invalid_range")
    return value


async def create_survey(ctx: ServiceContext, *, name: str, question: str, scale: str, trigger: str,
                        delay_days: int = 0, every_days: int | None = None, segment_tag: str | None = None,
                        throttle_days: int | None = None) -> Survey:
    scale, trigger = scale.lower(), trigger.lower()
    if scale not in SCALES:
        raise UserError("must be NPS (0-10) or CSAT (1-5)", "scale", "invalid")
    if trigger not in TRIGGERS:
        raise UserError("must be AFTER_ORDER, SCHEDULE or MANUAL", "trigger", "invalid")
    if trigger == "schedule" and every_days is None:
        raise UserError("a scheduled survey needs everyDays", "everyDays", "required")
    survey = Survey(name=v.text(name, "name", max_length=200), question=v.text(question, "question", max_length=500),
                    scale=scale, trigger=trigger, delay_days=_days(delay_days, "delayDays") or 0,
                    every_days=_days(every_days, "everyDays", minimum=1),
                    segment_tag=v.text(segment_tag, "segmentTag", max_length=50).lower() if segment_tag else None,
                    throttle_days=_days(throttle_days, "throttleDays"), active=True, created_at=ctx.now())
    ctx.session.add(survey)
    await ctx.session.flush()
    return survey


async def _invite(ctx: ServiceContext, survey: Survey, customer_ids: list[int], cause: str, due_at: datetime) -> int:
    if not customer_ids:
        return 0
    now = ctx.now()
    rows = [{"survey_id": survey.id, "customer_id": cid, "cause": f"{cause}:{cid}", "status": "pending",
             "due_at": due_at, "created_at": now} for cid in customer_ids]
    result = await ctx.session.execute(insert_ignoring_conflicts(ctx.dialect, Invitation.__table__), rows)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def _segment(ctx: ServiceContext, tag: str | None) -> list[int]:
    stmt = select(Customer.id).where(Customer.erased_at.is_(None)).order_by(Customer.id)
    if tag:
        stmt = stmt.join(CustomerTag, CustomerTag.customer_id == Customer.id).where(CustomerTag.tag == tag)
    return list(await ctx.session.scalars(stmt))


async def send_survey(ctx: ServiceContext, survey_id: int, *, tag: str | None = None,
                      customer_ids: list[int] | None = None) -> int:
    """Invite a segment (a tag, given ids, or the survey's own tag) now; returns how many
    invitations were created. They are sent at once: the sending job is queued with the
    transaction, not left for its next scheduled run (the throttle and consent hold)."""
    survey = await ctx.session.get(Survey, survey_id)
    if survey is None:
        raise NotFound("survey", survey_id, "surveyId")
    if not survey.active:
        raise UserError("this survey is switched off", "surveyId", "inactive")
    if customer_ids is not None:
        found = set(await ctx.session.scalars(select(Customer.id).where(Customer.id.in_(customer_ids))))
        missing = [c for c in customer_ids if c not in found]
        if missing:
            raise NotFound("customer", missing[0], "customerIds")
        ids = sorted(found)
    else:
        ids = await _segment(ctx, (tag or survey.segment_tag or "").lower() or None)
    created = await _invite(ctx, survey, ids, f"manual:{ctx.now().isoformat()}", ctx.now())
    if created:
        await ctx.enqueue(SEND_JOB, {}, dedupe_key=f"nps:send_due:manual:{survey.id}:{ctx.now().isoformat()}")
    return created


_AFTER_ORDER = CachedConfig("nps.after_order_surveys", Survey, Read(
    lambda _keys: select(Survey).where(Survey.trigger == "after_order", Survey.active.is_(True)).order_by(Survey.id)))


async def on_orders(ctx: ServiceContext, events: list[OrderRecorded]) -> None:
    """Orders invite their customers to every after-order survey, ``delayDays`` later (one
    statement per survey for the batch). Past orders being imported invite nobody."""
    if ctx.history:
        return
    now = ctx.now()
    for survey in await _AFTER_ORDER.get(ctx.session):
        rows = [{"survey_id": survey.id, "customer_id": e.order.customer_id,
                 "cause": f"order:{e.order.id}:{e.order.customer_id}", "status": "pending",
                 "due_at": e.order.placed_at + timedelta(days=survey.delay_days), "created_at": now} for e in events]
        await ctx.session.execute(insert_ignoring_conflicts(ctx.dialect, Invitation.__table__), rows)


async def on_merge(ctx: ServiceContext, event: CustomersMerged) -> None:
    for model in (Invitation, Response):
        await ctx.session.execute(
            update(model).where(model.customer_id == event.merged_id).values(customer_id=event.survivor.id))


def survey_token(signing_key: bytes, invitation: Invitation, settings: NpsSettings) -> str:
    """The link's token: signed, bound to the purpose "survey", naming the invitation."""
    return sign_token(signing_key, TOKEN_PURPOSE, {"i": invitation.id, "c": invitation.customer_id},
                      timedelta(days=settings.link_ttl_days))


def survey_link(ctx: ServiceContext, invitation: Invitation, settings: NpsSettings) -> str:
    return settings.survey_url.format(token=survey_token(ctx.settings.signing_key, invitation, settings))


async def _run_schedules(ctx: ServiceContext) -> None:
    now = ctx.now()
    surveys = await ctx.session.scalars(select(Survey).where(Survey.trigger == "schedule", Survey.active.is_(True)))
    for survey in surveys:
        if survey.last_run_at is None or survey.last_run_at + timedelta(days=survey.every_days or 1) <= now:
            await _invite(ctx, survey, await _segment(ctx, survey.segment_tag), f"run:{now.date()}", now)
            survey.last_run_at = now


async def send_due(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    """The ``nps.send_due`` job: start scheduled surveys, then send the invitations that
    are due, skipping a customer asked within the throttle window. A full batch queues
    the next one."""
    settings = settings_of(ctx)
    now = ctx.now()
    await _run_schedules(ctx)
    rows = list((await ctx.session.execute(
        select(Invitation, Survey).join(Survey, Survey.id == Invitation.survey_id)
        .where(Invitation.status == "pending", Invitation.due_at <= now)
        .order_by(Invitation.due_at, Invitation.id).limit(settings.batch_size)
    )).all())
    customer_ids = {inv.customer_id for inv, _ in rows}
    last_asked: dict[int, datetime] = dict((await ctx.session.execute(
        select(Invitation.customer_id, func.max(Invitation.sent_at))
        .where(Invitation.customer_id.in_(customer_ids), Invitation.sent_at.is_not(None))
        .group_by(Invitation.customer_id))).all())  # type: ignore[arg-type]
    for invitation, survey in rows:
        throttle = timedelta(days=survey.throttle_days if survey.throttle_days is not None else settings.throttle_days)
        asked = last_asked.get(invitation.customer_id)
        if asked is not None and asked > now - throttle:
            invitation.status = "skipped"
            invitation.skip_reason = f"asked on {asked.date()}, within {throttle.days} days"
            continue
        message_id = await send_message(
            ctx, customer_id=invitation.customer_id, template="nps.invitation",
            dedupe_key=f"nps:invitation:{invitation.id}",
            data={"survey_link": survey_link(ctx, invitation, settings), "question": survey.question,
                  "survey_name": survey.name})
        message = await ctx.session.get(Message, message_id) if message_id is not None else None
        if message is not None and message.status == MessageStatus.SKIPPED:
            invitation.status, invitation.skip_reason = "skipped", message.skip_reason
            continue
        invitation.status, invitation.sent_at = "sent", now
        last_asked[invitation.customer_id] = now
    if len(rows) == settings.batch_size:
        await ctx.enqueue(SEND_JOB, {}, dedupe_key=f"nps:send_due:after:{rows[-1][0].id}")


async def submit_response(ctx: ServiceContext, *, token: str, score: int, comment: str = "",
                          member_id: int | None = None) -> Response:
    try:
        claims = verify_token(ctx.settings.signing_key, TOKEN_PURPOSE, token.strip())
        invitation_id = int(claims["i"])
    except (AuthenticationError, KeyError, TypeError, ValueError) as exc:
        reason = str(exc) if isinstance(exc, AuthenticationError) else "the token is malformed"
        raise UserError(f"this survey link is not valid: {reason}", "token", "invalid_token") from None
    invitation = await ctx.session.get(Invitation, invitation_id, with_for_update=True)
    if invitation is None or invitation.customer_id != claims.get("c"):
        raise UserError("this survey link is not valid: no such invitation", "token", "invalid_token")
    if member_id is not None and member_id != invitation.customer_id:
        raise UserError("this survey link belongs to another customer", "token", "forbidden")
    if invitation.status == "answered":
        raise UserError("this survey link was already used: a survey is answered once", "token", "already_answered")
    survey = await ctx.session.get(Survey, invitation.survey_id)
    assert survey is not None
    low, high = SCALES[survey.scale]
    if not low <= score <= high:
        raise UserError(f"must be from {low} to {high} for this survey (got {score})", "score", "invalid_range")
    comment = v.text(comment, "comment", max_length=4000, required=False)
    now = ctx.now()
    response = Response(invitation_id=invitation.id, survey_id=survey.id, customer_id=invitation.customer_id,
                        scale=survey.scale, score=score, comment=comment, category=category(survey.scale, score),
                        answered_at=now)
    try:
        async with ctx.session.begin_nested():
            ctx.session.add(response)
    except IntegrityError:
        raise UserError("this survey link was already used: a survey is answered once", "token",
                        "already_answered") from None
    invitation.status, invitation.answered_at = "answered", now
    out_of = f"{score}/{high}"
    await ctx.publish("nps.answered", source=PLUGIN, customer_id=invitation.customer_id, timeline=True,
                      summary=f"Answered \u201c{survey.name}\u201d: {out_of} ({response.category})",
                      data={"surveyId": survey.id, "responseId": response.id, "score": score, "scale": survey.scale,
                            "category": response.category, "comment": comment})
    if needs_follow_up(survey.scale, score):
        customer = await ctx.session.get(Customer, invitation.customer_id)
        name = customer.name if customer else f"customer {invitation.customer_id}"
        await open_task(ctx, title=f"Follow up: {name} scored {out_of} on {survey.name}"[:200],
                        customer_id=invitation.customer_id, source=PLUGIN, source_key=f"response:{response.id}",
                        due_at=now + timedelta(days=settings_of(ctx).follow_up_days),
                        reason=f"Score {out_of} ({response.category}) to \u201c{survey.question}\u201d.\n"
                               f"Comment: {comment or '(none)'}")
    return response


@dataclass(frozen=True)
class LatestScore:
    score: int
    scale: str
    category: str
    answered_at: datetime


async def latest_scores(session: AsyncSession, customer_ids: list[int]) -> dict[int, LatestScore]:
    """Each customer's most recent survey answer (NPS or CSAT), for other plugins: the
    churn plugin treats a detractor or dissatisfied answer as a warning sign. Customers
    who never answered are absent. One query."""
    if not customer_ids:
        return {}
    newest = (select(Response.customer_id, func.max(Response.id).label("rid"))
              .where(Response.customer_id.in_(customer_ids)).group_by(Response.customer_id).subquery())
    rows = await session.scalars(select(Response).join(newest, and_(newest.c.rid == Response.id)))
    return {r.customer_id: LatestScore(r.score, r.scale, r.category, r.answered_at) for r in rows}


@dataclass
class Bucket:
    start: date
    responses: int = 0
    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def nps(self) -> float | None:
        if not self.responses:
            return None
        return round((self.promoters - self.detractors) * 100 / self.responses, 1)

    def add(self, category_name: str, count: int) -> None:
        self.responses += count
        if category_name == "promoter":
            self.promoters += count
        elif category_name == "passive":
            self.passives += count
        else:
            self.detractors += count


@dataclass
class Report:
    total: Bucket
    invitations_sent: int
    answered_of_sent: int
    trend: list[Bucket]

    @property
    def response_rate(self) -> float | None:
        return round(self.answered_of_sent / self.invitations_sent, 4) if self.invitations_sent else None


def bucket_start(day: date, group_by: str) -> date:
    return day - timedelta(days=day.weekday()) if group_by == "week" else day.replace(day=1)


def _day(column: Any, dialect: str) -> Any:
    return func.date(func.timezone("UTC", column)) if dialect == "postgresql" else func.date(column)


async def report(session: AsyncSession, *, start: date, end: date, group_by: str,
                 survey_id: int | None = None) -> Report:
    """NPS over ``start``..``end`` (whole UTC days, both included) of NPS-scale answers."""
    if end < start:
        raise UserError("must not be before from", "to", "invalid_range")
    if (end - start).days > 3660:
        raise UserError("a report covers at most ten years", "to", "invalid_range")
    dialect = session.bind.dialect.name if session.bind else "sqlite"
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    finish = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    where = [Response.answered_at >= begin, Response.answered_at < finish, Response.scale == "nps"]
    sent_where = [Invitation.sent_at >= begin, Invitation.sent_at < finish, Survey.scale == "nps"]
    if survey_id is not None:
        where.append(Response.survey_id == survey_id)
        sent_where.append(Invitation.survey_id == survey_id)
    day = _day(Response.answered_at, dialect)
    rows = (await session.execute(
        select(day, Response.category, func.count()).where(*where).group_by(day, Response.category))).all()
    total = Bucket(start)
    buckets: dict[date, Bucket] = {}
    for raw_day, category_name, count in rows:
        when = raw_day if isinstance(raw_day, date) else date.fromisoformat(str(raw_day))
        key = bucket_start(when, group_by)
        buckets.setdefault(key, Bucket(key)).add(category_name, int(count))
        total.add(category_name, int(count))
    sent, answered = (await session.execute(
        select(func.count(), func.count(Invitation.answered_at)).select_from(Invitation)
        .join(Survey, Survey.id == Invitation.survey_id).where(*sent_where))).one()
    cursor, trend = bucket_start(start, group_by), []
    while cursor <= end:
        trend.append(buckets.get(cursor, Bucket(cursor)))
        cursor = cursor + timedelta(days=7) if group_by == "week" else (cursor + timedelta(days=32)).replace(day=1)
    return Report(total=total, invitations_sent=int(sent or 0), answered_of_sent=int(answered or 0), trend=trend)
