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
from tenure.schema.relay import check_first
from tenure.schema.types.common import UserError


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


@strawberry.enum
class SurveyScale(Enum):
    NPS = "nps"
    CSAT = "csat"


@strawberry.enum
class SurveyTrigger(Enum):
    AFTER_ORDER = "after_order"
    SCHEDULE = "schedule"
    MANUAL = "manual"


@strawberry.enum
class ReportGrouping(Enum):
    WEEK = "week"
    MONTH = "month"


@strawberry.type(name="Survey", description="A survey: question, scale, when it goes out, how often one may be asked.")
class SurveyType:
    id: strawberry.ID
    name: str
    question: str
    delay_days: int = strawberry.field(description="After an order, for AFTER_ORDER surveys.")
    every_days: int | None = strawberry.field(description="How often a SCHEDULE survey runs.")
    segment_tag: str | None
    throttle_days: int | None = strawberry.field(description="Unset: TENURE_NPS_THROTTLE_DAYS.")
    active: bool
    created_at: datetime

    @strawberry.field
    def scale(self: Survey) -> SurveyScale:
        return SurveyScale(self.scale)

    @strawberry.field
    def trigger(self: Survey) -> SurveyTrigger:
        return SurveyTrigger(self.trigger)


@strawberry.type(description="An answer to a survey.")
class SurveyResponse:
    id: strawberry.ID
    score: int
    comment: str
    category: str = strawberry.field(description="promoter, passive, detractor (NPS); satisfied, neutral, "
                                                 "dissatisfied (CSAT)")
    answered_at: datetime

    @strawberry.field
    async def survey(self: Response, info: Info) -> SurveyType:
        return await info.context.loader(loaders.by_id_cached(Survey)).load(self.survey_id)


@strawberry.type(description="A customer asked to answer a survey.")
class SurveyInvitation:
    id: strawberry.ID
    status: str = strawberry.field(description="pending, sent, answered or skipped")
    skip_reason: str | None
    due_at: datetime
    sent_at: datetime | None
    answered_at: datetime | None

    @strawberry.field
    async def survey(self: Invitation, info: Info) -> SurveyType:
        return await info.context.loader(loaders.by_id_cached(Survey)).load(self.survey_id)

    @strawberry.field
    async def response(self: Invitation, info: Info) -> SurveyResponse | None:
        found = await info.context.loader(_responses_by_invitation).load(self.id)
        return found[0] if found else None


_responses_by_invitation = loaders.grouped(Response, Response.invitation_id, "nps_responses_by_invitation")


@strawberry.type(description="A member's survey still to answer, with the token to answer it.")
class OpenSurvey:
    question: str
    scale: SurveyScale
    token: str
    sent_at: datetime | None


@strawberry.type(description="NPS figures for one week or month.")
class NpsPeriod:
    start: date
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None = strawberry.field(description="% promoters - % detractors, -100 to 100; null without answers.")


@strawberry.type(description="NPS over a period, with its trend.")
class NpsReport:
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: float | None
    invitations_sent: int
    response_rate: float | None = strawberry.field(description="Share of the invitations sent in the period that "
                                                               "were answered (0 to 1).")
    trend: list[NpsPeriod]


def _period(bucket: service.Bucket) -> NpsPeriod:
    return NpsPeriod(start=bucket.start, responses=bucket.responses, promoters=bucket.promoters,
                     passives=bucket.passives, detractors=bucket.detractors, nps=bucket.nps)


@strawberry.input
class CreateSurveyInput:
    name: str
    question: str = "How likely are you to recommend us to a friend or colleague?"
    scale: SurveyScale = SurveyScale.NPS
    trigger: SurveyTrigger = SurveyTrigger.AFTER_ORDER
    delay_days: int = 7
    every_days: int | None = None
    segment_tag: str | None = None
    throttle_days: int | None = None


@strawberry.input(description="Invite a segment now: given customers, a tag, or else the survey's own segment.")
class SendSurveyInput:
    survey_id: strawberry.ID
    tag: str | None = None
    customer_ids: list[strawberry.ID] | None = None


@strawberry.input
class SubmitSurveyResponseInput:
    token: str = strawberry.field(description="The token of the survey link.")
    score: int
    comment: str = ""


@strawberry.type
class SurveyPayload:
    survey: SurveyType | None
    user_errors: list[UserError]


@strawberry.type
class SendSurveyPayload:
    invited: int
    user_errors: list[UserError]


@strawberry.type
class SubmitSurveyResponsePayload:
    response: SurveyResponse | None
    user_errors: list[UserError]


@strawberry.type
class NpsQuery:
    @strawberry.field(permission_classes=[allow(*STAFF)])
    async def surveys(self, info: Info) -> list[SurveyType]:
        async with info.context.db() as session:
            return list(await session.scalars(select(Survey).order_by(Survey.id)))

    @strawberry.field(permission_classes=[allow(*BACKOFFICE, scope="surveys:read")],
                      description="NPS of the answers given from `from` to `to` (UTC days, both included).")
    async def nps_report(self, info: Info, from_: Annotated[date, strawberry.argument(name="from")],
                         to: date | None = None,
                         group_by: ReportGrouping = ReportGrouping.MONTH,
                         survey_id: strawberry.ID | None = None) -> NpsReport:
        from tenure.core import clock
        from tenure.core.errors import UserError as DomainError

        end = to or clock.now().date()
        try:
            survey = int(survey_id) if survey_id is not None else None
            async with info.context.db() as session:
                result = await service.report(session, start=from_, end=end, group_by=group_by.value,
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
    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def create_survey(self, info: Info, input: CreateSurveyInput) -> SurveyPayload:
        survey, errors = await in_transaction(info, lambda ctx: service.create_survey(
            ctx, name=input.name, question=input.question, scale=input.scale.value, trigger=input.trigger.value,
            delay_days=input.delay_days, every_days=input.every_days, segment_tag=input.segment_tag,
            throttle_days=input.throttle_days))
        return SurveyPayload(survey=survey, user_errors=errors)  # type: ignore[arg-type]

    @strawberry.mutation(permission_classes=[allow(*STAFF)])
    async def send_survey(self, info: Info, input: SendSurveyInput) -> SendSurveyPayload:
        async def work(ctx: ServiceContext) -> int:
            ids = [parse_id(c, "customerIds") for c in input.customer_ids] if input.customer_ids is not None else None
            return await service.send_survey(ctx, parse_id(input.survey_id, "surveyId"), tag=input.tag,
                                             customer_ids=ids)

        invited, errors = await in_transaction(info, work)
        return SendSurveyPayload(invited=invited or 0, user_errors=errors)

    @strawberry.mutation(permission_classes=[AllowSurveyTokenHolders],
                         description="Answer a survey with its link's token; no other credentials are needed.")
    async def submit_survey_response(self, info: Info, input: SubmitSurveyResponseInput) -> SubmitSurveyResponsePayload:
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
    async def surveys(self: Any, info: Info, first: int = 10) -> list[SurveyInvitation]:
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
