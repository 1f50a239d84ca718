"""Journeys a business switches on as they are (``startJourneyTemplate``), and the texts of
their messages (``tenure_message_templates``; staff override them with ``createTemplate``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tenure.core.contributions import TemplateDefault


@dataclass(frozen=True)
class JourneyTemplate:
    key: str
    name: str
    description: str
    trigger: str
    steps: tuple[dict[str, Any], ...]
    exits: tuple[str, ...] = ()
    trigger_params: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    requires: str | None = None


TEMPLATES = {t.key: t for t in (
    JourneyTemplate(
        "signing_anniversary", "Signing anniversary",
        "A thank-you message at 10:00 on each anniversary of the day the customer signed up.",
        trigger="signing_anniversary",
        steps=({"action": "message", "wait": "P0D", "at": "10:00",
                "params": {"template": "journeys.anniversary"}},)),
    JourneyTemplate(
        "onboarding_30_days", "30-day onboarding",
        "After the first order: tips on day 3, a call from the owner on day 30; ends when they order again.",
        trigger="first_order", exits=("ordered",),
        steps=({"action": "message", "wait": "P3D", "at": "10:00", "params": {"template": "journeys.welcome_tips"}},
               {"action": "task", "wait": "P27D", "at": "10:00",
                "params": {"title": "Onboarding call (day 30)",
                           "reason": "30 days after the first order and no second one yet: call to ask how it "
                                     "went and what would bring them back."}})),
    JourneyTemplate(
        "churn_win_back", "Churn win-back coupon",
        "On a churn warning: a coupon at once, and a call task for the owner a week later; ends when the "
        "customer orders or the warning resolves.",
        trigger="churn_warned", exits=("ordered", "warning_resolved"), requires="churn",
        steps=({"action": "message", "wait": "P0D", "params": {"template": "journeys.win_back",
                                                               "data": {"coupon": "COMEBACK15"}}},
               {"action": "task", "wait": "P7D", "at": "10:00",
                "params": {"title": "Win-back call",
                           "reason": "A churn warning a week ago and a coupon sent; no order since."}})),
)}


MESSAGES = [
    TemplateDefault("journeys.anniversary", "en", "{customer_name}, another year together",
                    "Hello {customer_name},\n\na year ago today you joined us, and you are still here. Thank you!\n\n"
                    "See you soon."),
    TemplateDefault("journeys.anniversary", "de", "{customer_name}, ein weiteres gemeinsames Jahr",
                    "Hallo {customer_name},\n\nheute vor einem Jahr sind Sie zu uns gekommen. Danke für Ihre "
                    "Treue!\n\nBis bald."),
    TemplateDefault("journeys.welcome_tips", "en", "{customer_name}, three tips for your start",
                    "Hello {customer_name},\n\nthank you for your first order. Three things customers like to "
                    "know early:\n- your points and tier are in your account\n- answers come fastest by replying "
                    "to this email\n- returns are free for 30 days\n\nWelcome!"),
    TemplateDefault("journeys.welcome_tips", "de", "{customer_name}, drei Tipps für den Start",
                    "Hallo {customer_name},\n\ndanke für Ihre erste Bestellung. Drei Dinge, die neue Kunden gern "
                    "früh wissen:\n- Punkte und Stufe stehen in Ihrem Konto\n- Antworten Sie einfach auf diese "
                    "E-Mail\n- Rücksendungen sind 30 Tage kostenlos\n\nWillkommen!"),
    TemplateDefault("journeys.win_back", "en", "{customer_name}, we miss you: {coupon}",
                    "Hello {customer_name},\n\nit has been a while. Here is a coupon for your next order: "
                    "{coupon}\n\nWe would love to see you again."),
    TemplateDefault("journeys.win_back", "de", "{customer_name}, wir vermissen Sie: {coupon}",
                    "Hallo {customer_name},\n\nes ist eine Weile her. Ihr Gutschein für die nächste Bestellung: "
                    "{coupon}\n\nWir freuen uns auf Sie."),
]
