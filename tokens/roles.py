"""The RTC role, and every way of writing it the service, the policy file and the CLI accept.

Agora's builders take a number (1 publisher, 2 subscriber); the public token servers also take
names, and their clients send all of these. ``ROLES`` is the one table of spellings (matched
after lower-casing); ``ROLE_SPELLINGS`` lists them for messages.
"""
from __future__ import annotations

from enum import IntEnum

from .exceptions import TokenError


class Role(IntEnum):
    """RTC role: a publisher may send audio, video and data; a subscriber only joins."""

    PUBLISHER = 1
    SUBSCRIBER = 2


ROLES: dict[str, Role] = {
    "publisher": Role.PUBLISHER, "1": Role.PUBLISHER, "host": Role.PUBLISHER,
    "broadcaster": Role.PUBLISHER,
    "subscriber": Role.SUBSCRIBER, "2": Role.SUBSCRIBER, "audience": Role.SUBSCRIBER,
}
ROLE_SPELLINGS = "publisher, host, broadcaster, 1, subscriber, audience or 2"

_BY_VALUE = {role.value: role for role in Role}  # Role(x) by lookup: an Enum call is slow


def check_role(role: Role | int) -> Role:
    """The builders' role: ``Role`` or its number, nothing else."""
    try:
        return _BY_VALUE[role]
    except (KeyError, TypeError):
        raise TokenError(f"role must be {Role.PUBLISHER.value} (publisher) or "
                         f"{Role.SUBSCRIBER.value} (subscriber), got {role!r}") from None
