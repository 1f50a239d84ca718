"""Predicted lifetime value: BG/NBD (purchase occasions, probability active) and Gamma-Gamma
(value of a purchase) fitted nightly on the orders; per customer ``probabilityActive``,
``expectedOrders(days)`` and ``predictedValue(days)`` on ``Customer`` (and on ``Member`` when
the business allows it), the model and its holdout check in ``predictionModel`` and
``tenure predict report``, and retention splits by band. See :mod:`tenure.plugins.predictions.service`.
"""

from __future__ import annotations

import os
from typing import Any

from tenure.core import __version__
from tenure.core.contributions import (
    EventHandler,
    JobSpec,
    PersonalData,
    PluginInfo,
    RetentionDimension,
    SchemaContribution,
)
from tenure.core.events import CustomersMerged
from tenure.core.plugins import hookimpl
from tenure.core.settings import read_dataclass
from tenure.plugins.predictions import jobs, models, service  # noqa: F401  (models: its tables join the metadata)
from tenure.plugins.predictions.settings import PredictionsSettings


def _settings() -> PredictionsSettings:
    return read_dataclass(PredictionsSettings, "TENURE_PREDICTIONS_", os.environ)


@hookimpl
def tenure_plugin_info() -> PluginInfo:
    return PluginInfo(name="predictions", version=__version__,
                      summary="Predicted purchases, activity and lifetime value per customer (BG/NBD, Gamma-Gamma)",
                      migrations="tenure.plugins.predictions:migrations")


@hookimpl
def tenure_schema() -> SchemaContribution:
    from tenure.plugins.predictions.schema import contribution

    return contribution()


@hookimpl
def tenure_jobs() -> list[JobSpec]:
    return jobs.jobs(_settings())


@hookimpl
def tenure_event_handlers() -> list[EventHandler]:
    return [EventHandler(CustomersMerged, service.on_customers_merged, priority=300)]


@hookimpl
def tenure_personal_data() -> list[PersonalData]:
    from tenure.plugins.predictions import privacy

    return privacy.personal_data()


@hookimpl
def tenure_retention_dimensions() -> list[RetentionDimension]:
    from tenure.plugins.predictions.retention import dimensions

    return dimensions(_settings())


@hookimpl
def tenure_cli_commands() -> list[Any]:
    from tenure.plugins.predictions.cli import predict

    return [predict]


@hookimpl
def churn_signals() -> list[Any]:
    from tenure.plugins.predictions.signals import signals

    return signals()
