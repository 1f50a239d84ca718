"""Message templates: built-in texts from the plugins (``tenure_message_templates``),
overridden per key and locale by templates edited through the API.

Placeholders are ``{name}`` in braces: ``{customer_name}`` always, and what the sender
passes as data (``{points}``, ``{tier}``, ``{survey_link}``, ``{renewal_date}`` ...). A
placeholder without a value renders empty; ``{{`` and ``}}`` are literal braces.
"""

from __future__ import annotations

import string
from typing import Any

from sqlalchemy import select

from tenure.core import validation as v
from tenure.core.context import ServiceContext
from tenure.core.contributions import TemplateDefault
from tenure.core.errors import NotFound, UserError
from tenure.core.models import MessageTemplate

_FORMATTER = string.Formatter()


def defaults(plugins: Any) -> dict[tuple[str, str], TemplateDefault]:
    """Every enabled plugin's built-in templates by (key, locale)."""
    found: dict[tuple[str, str], TemplateDefault] = {}
    for contributed in plugins.hook.tenure_message_templates():
        for item in contributed or ():
            found[item.key, item.locale.lower()] = item
    return found


def placeholders(text: str, field: str) -> list[str]:
    """The placeholder names of ``text``; a malformed one is a user error naming ``field``."""
    try:
        parsed = list(_FORMATTER.parse(text))
    except ValueError as exc:
        raise UserError(f"is not a valid template: {exc} (write {{{{ for a literal brace)", field,
                        "invalid_template") from None
    names = []
    for _, name, _spec, _conversion in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise UserError(f"{{{name}}} is not a placeholder: use a plain name such as {{customer_name}}",
                            field, "invalid_template")
        names.append(name)
    return names


class _Values(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def render(text: str, values: dict[str, Any]) -> str:
    return _FORMATTER.vformat(text, (), _Values(values))


def locale_chain(locale: str | None, default: str) -> list[str]:
    """``pt-BR`` -> ``pt-br``, ``pt``, then the default locale."""
    chain: list[str] = []
    for candidate in ((locale or "").lower().replace("_", "-"), (locale or "").lower().split("-")[0].split("_")[0],
                      default.lower()):
        if candidate and candidate not in chain:
            chain.append(candidate)
    return chain


async def resolve(ctx: ServiceContext, key: str, locale: str | None) -> tuple[str, str, str]:
    """(locale used, subject, body) of template ``key`` for a customer speaking ``locale``:
    an edited template first, then the built-in one, walking the locale chain."""
    chain = locale_chain(locale, ctx.settings.message_default_locale)
    rows = {row.locale: row for row in await ctx.session.scalars(
        select(MessageTemplate).where(MessageTemplate.key == key, MessageTemplate.locale.in_(chain)))}
    built_in = defaults(ctx.plugins)
    for candidate in chain:
        if candidate in rows:
            return candidate, rows[candidate].subject, rows[candidate].body
        if (key, candidate) in built_in:
            item = built_in[key, candidate]
            return candidate, item.subject, item.body
    any_default = next((d for (k, _), d in built_in.items() if k == key), None)
    if any_default is not None:
        return any_default.locale, any_default.subject, any_default.body
    raise UserError(f"no template named {key!r}", "template", "not_found")


def _clean(key: str | None, locale: str | None, subject: str | None, body: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if key is not None:
        out["key"] = v.text(key, "key", max_length=100)
    if locale is not None:
        out["locale"] = v.text(locale, "locale", max_length=20).lower().replace("_", "-")
    if subject is not None:
        out["subject"] = v.text(subject, "subject", max_length=300, required=False)
        placeholders(out["subject"], "subject")
    if body is not None:
        out["body"] = v.text(body, "body", max_length=20000)
        placeholders(out["body"], "body")
    return out


async def create_template(ctx: ServiceContext, *, key: str, locale: str, subject: str, body: str) -> MessageTemplate:
    values = _clean(key, locale, subject, body)
    existing = await ctx.session.scalar(select(MessageTemplate).where(
        MessageTemplate.key == values["key"], MessageTemplate.locale == values["locale"]))
    if existing is not None:
        raise UserError(f"a {values['key']} template in {values['locale']} exists (id {existing.id}); "
                        "change it with updateTemplate", "locale", "conflict")
    now = ctx.now()
    row = MessageTemplate(**values, created_at=now, updated_at=now)
    ctx.session.add(row)
    await ctx.session.flush()
    return row


async def update_template(ctx: ServiceContext, template_id: int, *, subject: str | None,
                          body: str | None) -> MessageTemplate:
    row = await ctx.session.get(MessageTemplate, template_id)
    if row is None:
        raise NotFound("template", template_id, "id")
    for name, value in _clean(None, None, subject, body).items():
        setattr(row, name, value)
    row.updated_at = ctx.now()
    await ctx.session.flush()
    return row
