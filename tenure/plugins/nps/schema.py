"""The NPS plugin's GraphQL: surveys, ``submitSurveyResponse`` (a member or anyone holding
the link's token), ``npsReport``, ``Customer.surveys`` and ``Member.surveys``."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from graphql import GraphQLError
from sqlalchemy import select
from strawberry.types import Info

from tenure.core.context import ServiceContext
from tenure.core.models import Role
from tenure.plugins.nps import service
from tenure.plugins.nps.models import Invitation, Response, Survey
from tenure.schema import loaders
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, EVERYONE, STAFF, TenurePermission, allow
from tenure.schema.relay import Node, check_first, decode_id, node
from tenure.schema.types.common import USER_ERRORS, UserError


class AllowSurveyTokenHolders(TenurePermission):
    """Every role, and callers with no credentials at all: the survey link's signed token
    in the input is what admits them. Credentials that are sent must still be valid."""

    roles = EVERYONE

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        if context.principal is None:
            if context.auth_error:
                raise GraphQLError(context.auth_error, extensions={"code": "UNAUTHENTICATED"})
            return True
        return super().has_permission(source, info, **kwargs)


@strawberry.enum(description="How a survey is answered.")
class SurveyScale(Enum):
    NPS = strawberry.enum_value("nps", description="Net Promoter Score: 0 to 10.")
    CSAT = strawberry.enum_value("csat", description="Customer satisfaction: 1 to 5.")


@strawberry.enum(description="When a survey's invitations go out.")
class SurveyTrigger(Enum):
    AFTER_ORDER = strawberry.enum_value("after_order", description="delayDays after each order.")
    SCHEDULE = strawberry.enum_value("schedule", description="Every everyDays, to the segment.")
    MANUAL = strawberry.enum_value("manual", description="Only when sendSurvey says so.")


@strawberry.enum(description="The length of each period of a trend.")
class ReportGrouping(Enum):
    WEEK = strawberry.enum_value("week", description="Weeks, from Monday.")
    MONTH = strawberry.enum_value("month", description="Calendar months.")


@strawberry.type(name="Survey", description="A survey: question, scale, when it goes out, how often one may be asked.")
@node(Survey, allow(*STAFF))
class SurveyType(Node):
    name: str = strawberry.field(description="The survey's name, for staff.")
    question: str = strawberry.field(description="The question the customer is asked.")
    delay_days: int = strawberry.field(description="After an order, for AFTER_ORDER surveys.")
    every_days: int | None = strawberry.field(description="How often a SCHEDULE survey runs.")
    segment_tag: str | None = strawberry.field(description="Only customers with this tag are asked; null for everyone.")
    throttle_days: int | None = strawberry.field(description="Unset: TENURE_NPS_THROTTLE_DAYS.")
    active: bool = strawberry.field(description="False once switched off: no one new is invited.")
    created_at: datetime = strawberry.field(description="When it was created.")

    @strawberry.field(description="How it is answered.")
    def scale(self: Survey) -> SurveyScale:
        return SurveyScale(self.scale)

    @strawberry.field(description="When invitations go out.")
    def trigger(self: Survey) -> SurveyTrigger:
        return SurveyTrigger(self.trigger)


@strawberry.type(description="An answer to a survey.")
@node(Response, allow(*BACKOFFICE, scope="surveys:read"))
class SurveyResponse(Node):
    score: int = strawberry.field(description="The score given: 0-10 for NPS, 1-5 for CSAT.")
    comment: str = strawberry.field(description="What the customer wrote; empty when nothing.")
    category: str = strawberry.field(description="What the score makes the answer: promoter, passive or detractor "
                                                 "(NPS); satisfied, neutral or dissatisfied (CSAT).")
    answered_at: datetime = strawberry.field(description="When it was answered.")

    @strawberry.field(description="The survey answered.")
    async def survey(self: Response, info: Info) -> SurveyType:
        return await info.context.loader(loaders.by_id_cached(Survey)).load(self.survey_id)


@strawberry.enum(description="Where a survey invitation stands.")
class InvitationStatus(Enum):
    PENDING = strawberry.enum_value("pending", description="Waiting for its due time.")
    SENT = strawberry.enum_value("sent", description="Sent; no answer yet.")
    ANSWERED = strawberry.enum_value("answered", description="Answered: `response` holds the answer.")
    SKIPPED = strawberry.enum_value("skipped", description="Not sent: `skipReason` says why.")


@strawberry.type(description="A customer asked to answer a survey.")
@node(Invitation, allow(*BACKOFFICE, scope="surveys:read"))
class SurveyInvitation(Node):
    # The row's value, serialised by the enum type.
    status: InvitationStatus = strawberry.field(description="Where the invitation stands.")
    skip_reason: str | None = strawberry.field(
        description="Why it was not sent (no consent, asked too recently ...); null unless skipped.")
    due_at: datetime = strawberry.field(description="When it is to be sent.")
    sent_at: datetime | None = strawberry.field(description="When it was sent; null until then.")
    answered_at: datetime | None = strawberry.field(description="When it was answered; null until then.")

    @strawberry.field(description="The survey.")
    async def survey(self: Invitation, info: Info) -> SurveyType:
        return await info.context.loader(loaders.by_id_cached(Survey)).load(self.survey_id)

    @strawberry.field(description="The answer; null until answered.")
    async def response(self: Invitation, info: Info) -> SurveyResponse | None:
        found = await info.context.loader(_responses_by_invitation).load(self.id)
        return found[0] if found else None


_responses_by_invitation = loaders.grouped(Response, Response.invitation_id, "nps_responses_by_invitation")


@strawberry.type(description="A member's survey still to answer, with the token to answer it.")
class OpenSurvey:
    question: str = strawberry.field(description="The question.")
    scale: SurveyScale = strawberry.field(description="How it is answered: NPS (0-10) or CSAT (1-5).")
    token: str = strawberry.field(description="The token to pass to submitSurveyResponse.")
    sent_at: datetime | None = strawberry.field(description="When the invitation was sent; null if not yet.")


@strawberry.type(description="NPS figures for one week or month.")
class NpsPeriod:
    start: date = strawberry.field(description="The period's first day.")
    responses: int = strawberry.field(description="Answers given in it.")
    promoters: int = strawberry.field(description="Answers scoring 9-10.")
    passives: int = strawberry.field(description="Answers scoring 7-8.")
    detractors: int = strawberry.field(description="Answers scoring 0-6.")
    nps: float | None = strawberry.field(description="% promoters - % detractors, -100 to 100; null without answers.")


@strawberry.type(description="NPS over a period, with its trend.")
class NpsReport:
    responses: int = strawberry.field(description="Answers given in the period.")
    promoters: int = strawberry.field(description="Answers scoring 9-10.")
    passives: int = strawberry.field(description="Answers scoring 7-8.")
    detractors: int = strawberry.field(description="Answers scoring 0-6.")
    nps: float | None = strawberry.field(description="% promoters - % detractors, -100 to 100; null without answers.")
    invitations_sent: int = strawberry.field(description="Invitations sent in the period.")
    response_rate: float | None = strawberry.field(description="Share of the invitations sent in the period that "
                                                               "were answered (0 to 1).")
    trend: list[NpsPeriod] = strawberry.field(description="The same figures per week or month, oldest first.")


def _period(bucket: service.Bucket) -> NpsPeriod:
    return NpsPeriod(start=bucket.start, responses=bucket.responses, promoters=bucket.promoters,
                     passives=bucket.passives, detractors=bucket.detractors, nps=bucket.nps)


@strawberry.input(description="A new survey.")
class CreateSurveyInput:
    name: str = strawberry.field(description="The survey's name, for staff.")
    question: str = strawberry.field(
        default="How likely are you to recommend us to a friend or colleague?", description="The question to ask.")
    scale: SurveyScale = strawberry.field(
        default=SurveyScale.NPS, description="How it is answered: NPS (0-10, the default) or CSAT (1-5).")
    trigger: SurveyTrigger = strawberry.field(
        default=SurveyTrigger.AFTER_ORDER, description="When invitations go out; AFTER_ORDER unless given.")
    delay_days: int = strawberry.field(
        default=7, description="AFTER_ORDER: how many days after the order; 7 unless given.")
    every_days: int | None = strawberry.field(
        default=None, description="SCHEDULE: how many days between runs; null for other triggers.")
    segment_tag: str | None = strawberry.field(
        default=None, description="Only ask customers with this tag; null for everyone.")
    throttle_days: int | None = strawberry.field(
        default=None, description="The fewest days between two invitations to one customer; null for "
                                  "TENURE_NPS_THROTTLE_DAYS.")


@strawberry.input(description="Invite a segment now: given customers, a tag, or else the survey's own segment.")
class SendSurveyInput:
    survey_id: strawberry.ID = strawberry.field(description="The survey's id.")
    tag: str | None = strawberry.field(default=None, description="Invite the customers with this tag.")
    customer_ids: list[strawberry.ID] | None = strawberry.field(default=None, description="Invite these customers.")


@strawberry.input(description="An answer to a survey.")
class SubmitSurveyResponseInput:
    token: str = strawberry.field(description="The token of the survey link.")
    score: int = strawberry.field(description="The score: 0-10 for NPS, 1-5 for CSAT.")
    comment: str = strawberry.field(default="", description="Anything the customer wants to add.")


@strawberry.type(description="The result of createSurvey.")
class SurveyPayload:
    survey: SurveyType | None = strawberry.field(description="The survey created; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of sendSurvey.")
class SendSurveyPayload:
    invited: int = strawberry.field(
        description="How many customers were invited (those asked too recently are left out).")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type(description="The result of submitSurveyResponse.")
class SubmitSurveyResponsePayload:
    response: SurveyResponse | None = strawberry.field(description="The answer recorded; null when refused.")
    user_errors: list[UserError] = strawberry.field(description=USER_ERRORS)


@strawberry.type
class NpsQuery:
    @strawberry.field(permission_classes=[allow(*STAFF)], description="Every survey, oldest first.")
    async def surveys(self, info: Info) -> list[SurveyType]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Survey).order_by(Survey.id)))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="surveys:read")],
                      description="NPS of the answers given from `from` to `to` (UTC days, both included).")
    async def nps_report(self, info: Info,
                         from_: Annotated[date, strawberry.argument(name="from", description="The first day.")],
                         to: Annotated[date | None, strawberry.argument(
                             description="The last day; null for today.")] = None,
                         group_by: Annotated[ReportGrouping, strawberry.argument(
                             description="The length of each period of the trend; MONTH unless given.")]
                         = ReportGrouping.MONTH,
                         survey_id: Annotated[strawberry.ID | None, strawberry.argument(
                             description="Only answers to this survey; null for every survey.")] = None) -> NpsReport:
        from tenure.core import clock
        from tenure.core.errors import UserError as DomainError

        end = to or clock.now().date()
        try:
            survey = decode_id(survey_id, "Survey") if survey_id is not None else None
            async with info.context.db() as session:
                result = await service.report(session, start=from_, end=end, group_by=str(group_by.value),
                                              survey_id=survey)
        except (DomainError, ValueError) as error:
            field = getattr(error, "field", "surveyId")
            raise GraphQLError(str(error), extensions={"code": "BAD_USER_INPUT", "field": field}) from None
        t = result.total
        return NpsReport(responses=t.responses, promoters=t.promoters, passives=t.passives, detractors=t.detractors,
                         nps=t.nps, invitations_sent=result.invitations_sent, response_rate=result.response_rate,
                         trend=[_period(b) for b in result.trend])


@strawberry.type
class NpsMutation:
    @strawberry.mutation(permission_classes=[allow(*STAFF)], description="Create a survey.")
    async def create_survey(self, info: Info, input: Annotated[CreateSurveyInput, strawberry.argument(
            description="The survey.")]) -> SurveyPayload:
        survey, errors = await in_transaction(info, lambda ctx: service.create_survey(
            ctx, name=input.name, question=input.question, scale=str(input.scale.value),
            trigger=str(input.trigger.value),
            delay_days=input.delay_days, every_days=input.every_days, segment_tag=input.segment_tag,
            throttle_days=input.throttle_days))
        return SurveyPayload(survey=survey, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)],
                         description="Invite customers to a survey now, leaving out those asked too recently.")
    async def send_survey(self, info: Info, input: Annotated[SendSurveyInput, strawberry.argument(
            description="The survey and who to invite.")]) -> SendSurveyPayload:
        async def work(ctx: ServiceContext) -> int:
            given = input.customer_ids
            ids = [parse_id(c, "customerIds", "Customer") for c in given] if given is not None else None
            return await service.send_survey(ctx, parse_id(input.survey_id, "surveyId", "Survey"), tag=input.tag,
                                             customer_ids=ids)

        invited, errors = await in_transaction(info, work)
        return SendSurveyPayload(invited=invited or 0, user_errors=errors)

    @strawberry.mutation(permission_classes=[AllowSurveyTokenHolders],
                         description="Answer a survey with its link's token; no other credentials are needed.")
    async def submit_survey_response(self, info: Info, input: Annotated[SubmitSurveyResponseInput, strawberry.argument(
            description="The link's token, the score and a comment.")]) -> SubmitSurveyResponsePayload:
        principal = info.context.principal
        member = principal.customer_id if principal is not None and principal.role == Role.MEMBER else None
        response, errors = await in_transaction(info, lambda ctx: service.submit_response(
            ctx, token=input.token, score=input.score, comment=input.comment, member_id=member))
        return SubmitSurveyResponsePayload(response=response, user_errors=errors)  # type: ignore[arg-type]


async def _invitations(info: Info, customer_id: int, first: int) -> list[Invitation]:
    first = check_first(first, info.context.settings.max_page_size)
    load = info.context.loader(loaders.latest_per_customer(Invitation, Invitation.__table__.c.created_at, first),
                               key=("nps_invitations", first))
    return (await load.load(customer_id))[:first]


@strawberry.type
class CustomerSurveys:
    @strawberry.field(description="Survey invitations and answers, newest first.")
    async def surveys(self: Any, info: Info, first: Annotated[int, strawberry.argument(
            description="How many, newest first, up to the page-size cap (TENURE_MAX_PAGE_SIZE).")] = 10,
    ) -> list[SurveyInvitation]:
        return await _invitations(info, self.id, first)  # type: ignore[return-value]


@strawberry.type
class MemberSurveys:
    @strawberry.field(description="Surveys sent to the member and not answered yet, with their tokens.")
    async def open_surveys(self: Any, info: Info) -> list[OpenSurvey]:
        rows = [i for i in await _invitations(info, self.id, 20) if i.status == "sent"]
        surveys = await info.context.loader(loaders.by_id_cached(Survey)).load_many([i.survey_id for i in rows])
        settings = info.context.settings.for_plugin(service.PLUGIN, service.NpsSettings)
        key = info.context.settings.signing_key
        return [OpenSurvey(question=s.question, scale=SurveyScale(s.scale), sent_at=i.sent_at,
                           token=service.survey_token(key, i, settings))
                for i, s in zip(rows, surveys, strict=True)]
