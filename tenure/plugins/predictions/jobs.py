"""The nightly fit: both models fitted on the orders and every customer scored. Idempotent:
a second run on the same day replaces that day's fit and scores with the same figures."""

from __future__ import annotations

import logging
from typing import Any

from tenure.core.context import ServiceContext
from tenure.core.contributions import JobSpec
from tenure.plugins.predictions import service
from tenure.plugins.predictions.results import Refused
from tenure.plugins.predictions.settings import PredictionsSettings

log = logging.getLogger(__name__)


async def fit(ctx: ServiceContext, payload: dict[str, Any]) -> None:
    try:
        outcome = await service.fit_and_score(ctx)
    except Refused as refused:
        # Recorded with the fit's day; retrying would refuse again, so the job ends here.
        log.warning("predictions: %s", refused)
        return
    log.info("predictions: fitted and scored %d customers in %.1f s", outcome.scored, outcome.seconds)


def jobs(cfg: PredictionsSettings) -> list[JobSpec]:
    return [JobSpec("predictions.fit", fit, schedule=cfg.fit_schedule,
                    description="Fit BG/NBD and Gamma-Gamma on the orders, check them on the holdout days "
                                "and score every customer")]
