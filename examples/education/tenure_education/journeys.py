"""A journey trigger for the journeys plugin: a learner completed a course (optionally one
course, ``{"course": "python-101"}``). Imported only when journeys calls the hook, so the
plugin loads and works without journeys."""

from __future__ import annotations

from typing import Any

from tenure.plugin import UserError
from tenure.plugins.journeys.hookspecs import Trigger

COMPLETED = "education.course_completed"


def course_param(params: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - {"course"})
    if unknown:
        raise UserError(f"unknown parameter {', '.join(unknown)} (this takes: course)", "trigger.params", "invalid")
    course = params.get("course")
    if course is None:
        return {}
    if not isinstance(course, str) or not course.strip() or len(course.strip()) > 100:
        raise UserError("course must be a course code of at most 100 characters", "trigger.params", "invalid")
    return {"course": course.strip().lower()}


def same_course(data: dict[str, Any], params: dict[str, Any]) -> bool:
    return "course" not in params or data.get("course") == params["course"]


def triggers() -> list[Trigger]:
    return [Trigger(COMPLETED, "A learner completed a course; params {\"course\": code} for one course.",
                    event_type=COMPLETED, match=same_course, check=course_param)]
