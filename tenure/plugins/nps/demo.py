"""The surveys of ``tenure demo``: one sent to a sample of customers now and then over the
last year and answered by about half of them, the score leaning on how the customer feels
about the shop (detractors get their follow-up task from the plugin's rule)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tenure.core.context import ServiceContext
from tenure.core.contributions import DemoCustomer, DemoData, DemoRun, DemoStep
from tenure.plugins.nps import service
from tenure.plugins.nps.models import Invitation, Survey

SURVEY_NAME = "How are we doing?"
SURVEY_QUESTION = "How likely are you to recommend us to a friend, from 0 to 10?"
# Chances of promoter / passive (the rest: detractor) by the customer's profile.
MOOD = {"loyal": (0.65, 0.25), "regular": (0.45, 0.35), "occasional": (0.3, 0.4), "churner": (0.12, 0.28)}
COMMENTS = {
    "promoter": ("Great beans, friendly staff", "Always fresh", "Love the app and the points", ""),
    "passive": ("Good, a bit pricey", "Delivery could be faster", ""),
    "detractor": ("My order came late twice", "Prices went up", "Nobody answered my email", ""),
}


async def setup(ctx: ServiceContext) -> None:
    if await ctx.session.scalar(select(Survey.id).where(Survey.name == SURVEY_NAME)) is None:
        await service.create_survey(ctx, name=SURVEY_NAME, question=SURVEY_QUESTION, scale="nps", trigger="manual")


def plan(customer: DemoCustomer) -> list[DemoStep]:
    """A survey in about one month of twenty, the last year; a customer who stopped buying
    is less often a promoter or passive."""
    rng, now = customer.rng, customer.now
    steps = []
    month = now - timedelta(days=365)
    while month < now - timedelta(days=3):
        if month > customer.signup and rng.random() < 0.05:
            asked = month + timedelta(days=rng.randint(0, 27), hours=rng.randint(0, 10))
            promoter, passive = MOOD[customer.profile]
            if customer.stopped is not None and asked > customer.stopped:
                promoter, passive = promoter / 2, passive / 2
            roll = rng.random()
            mood = "promoter" if roll < promoter else "passive" if roll < promoter + passive else "detractor"
            score = {"promoter": rng.choice((9, 10)), "passive": rng.choice((7, 8)),
                     "detractor": rng.choice((2, 4, 5, 6, 6))}[mood]
            answered = asked + timedelta(hours=rng.randint(1, 60)) if rng.random() < 0.55 else None
            steps.append(DemoStep(asked, "survey", {"score": score, "comment": rng.choice(COMMENTS[mood]),
                                                    "answered_at": answered if answered and answered < now else None}))
        month += timedelta(days=30)
    return steps


async def apply(ctx: ServiceContext, customer_id: int, step: DemoStep, run: DemoRun) -> None:
    """Staff send the survey to this customer; the due-surveys job sends it (or skips it: no
    consent, asked too recently); the customer answers through the link's token."""
    if "survey_id" not in run.memo:
        run.memo["survey_id"] = await ctx.session.scalar(select(Survey.id).where(Survey.name == SURVEY_NAME))
    survey_id = run.memo["survey_id"]
    if survey_id is None:
        return
    await service.send_survey(ctx, survey_id, customer_ids=[customer_id])
    await service.send_due(ctx, {})
    await ctx.session.flush()
    invitation = await ctx.session.scalar(
        select(Invitation).where(Invitation.customer_id == customer_id, Invitation.status == "sent")
        .order_by(Invitation.id.desc()).limit(1))
    if invitation is None:
        return
    run.count("sent")
    if step.data["answered_at"] is None:
        return
    run.clock.set(step.data["answered_at"])
    token = service.survey_token(ctx.settings.signing_key, invitation, service.settings_of(ctx))
    await service.submit_response(ctx, token=token, score=step.data["score"], comment=step.data["comment"])
    run.count("answers")


def summary(counts: dict[str, int]) -> list[str]:
    return [f"surveys: {counts.get('sent', 0)} sent, {counts.get('answers', 0)} answered"]


DEMO = DemoData(setup=setup, plan=plan, apply=apply, summary=summary)
