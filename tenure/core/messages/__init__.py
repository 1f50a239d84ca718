"""Messages to customers and their owners: templates, channels, recorded in the business
transaction and delivered by a job (see :mod:`tenure.core.messages.service`).

Plugins call :func:`send_message`; partners add channels with the
``tenure_message_channels`` hook and built-in texts with ``tenure_message_templates``.
"""

from __future__ import annotations

from tenure.core.messages.service import DELIVER_JOB, available_channels, deliver, retry_message, send_message

__all__ = ["DELIVER_JOB", "available_channels", "deliver", "retry_message", "send_message"]
