"""The partner API: every name a plugin package imports from Tenure.

A plugin writes ``from tenure.plugin import hookimpl, PluginInfo, ...`` and nothing else of
Tenure's, apart from a built-in plugin's ``hookspecs`` module when it answers that plugin's
hooks (``tenure.plugins.loyalty.hookspecs``, ``tenure.plugins.journeys.hookspecs``,
``tenure.plugins.churn.signals``). Its tests use ``tenure.testing`` and the pytest plugin
``tenure.pytest_plugin``. These names are kept stable within a major version of
:data:`API_VERSION`; a name leaves only after a release that marks it deprecated. Every
other module of the distribution is Tenure's own and changes without notice.

The hooks a plugin may implement are documented in :mod:`tenure.core.hookspecs`, and the
guide is docs/plugins.md.
"""

from __future__ import annotations

from tenure.core import validation
from tenure.core.clock import as_utc, now
from tenure.core.context import ServiceContext
from tenure.core.contributions import (
    DeliveryError,
    DemoCustomer,
    DemoData,
    DemoRun,
    DemoStep,
    DemoTransaction,
    EventHandler,
    Forecaster,
    ForecastItem,
    InvariantCheck,
    JobSpec,
    MessageChannel,
    Outgoing,
    PersonalData,
    PluginInfo,
    RetentionDimension,
    SchemaContribution,
    TemplateDefault,
)
from tenure.core.db import BigId, UTCDateTime, plugin_model_base
from tenure.core.errors import Conflict, NotFound, UserError
from tenure.core.events import (
    CustomerCreated,
    CustomersMerged,
    CustomerUpdated,
    DomainEvent,
    InteractionLogged,
    OrderCancelled,
    OrderRecorded,
    OrderRefunded,
    TaskCompleted,
    TaskCreated,
)
from tenure.core.forecast import run_day
from tenure.core.messages.service import send_message
from tenure.core.models import Customer, Interaction, Order, OrderLine, Role, Task
from tenure.core.outbox import GiveUp, RunAgain
from tenure.core.plugins import hookimpl
from tenure.core.privacy import export_rows
from tenure.core.services.interactions import log_interaction
from tenure.core.services.tasks import open_task
from tenure.core.settings import Settings, SettingsError
from tenure.schema.mutations import in_transaction, parse_id
from tenure.schema.permissions import BACKOFFICE, EVERYONE, STAFF, allow, member_id
from tenure.schema.relay import After, Before, Connection, First, Last, Node, id_of, node, paginate, to_global_id
from tenure.schema.types.common import UserError as UserErrorType
from tenure.schema.types.errors import ErrorCode

#: The partner API's version: the major number changes when a name above is removed or
#: changes meaning.
API_VERSION = (1, 1)

__all__ = [
    "API_VERSION",
    "BACKOFFICE",
    "EVERYONE",
    "STAFF",
    "After",
    "Before",
    "BigId",
    "Conflict",
    "Connection",
    "Customer",
    "CustomerCreated",
    "CustomerUpdated",
    "CustomersMerged",
    "DeliveryError",
    "DemoCustomer",
    "DemoData",
    "DemoRun",
    "DemoStep",
    "DemoTransaction",
    "DomainEvent",
    "ErrorCode",
    "EventHandler",
    "First",
    "ForecastItem",
    "Forecaster",
    "GiveUp",
    "Interaction",
    "InteractionLogged",
    "InvariantCheck",
    "JobSpec",
    "Last",
    "MessageChannel",
    "Node",
    "NotFound",
    "Order",
    "OrderCancelled",
    "OrderLine",
    "OrderRecorded",
    "OrderRefunded",
    "Outgoing",
    "PersonalData",
    "PluginInfo",
    "RetentionDimension",
    "Role",
    "RunAgain",
    "SchemaContribution",
    "ServiceContext",
    "Settings",
    "SettingsError",
    "Task",
    "TaskCompleted",
    "TaskCreated",
    "TemplateDefault",
    "UTCDateTime",
    "UserError",
    "UserErrorType",
    "allow",
    "as_utc",
    "export_rows",
    "hookimpl",
    "id_of",
    "in_transaction",
    "log_interaction",
    "member_id",
    "node",
    "now",
    "open_task",
    "paginate",
    "parse_id",
    "plugin_model_base",
    "run_day",
    "send_message",
    "to_global_id",
    "validation",
]
