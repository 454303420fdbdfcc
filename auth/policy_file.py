"""Reading the policy file: YAML in, a compiled ``Policy`` out, every mistake with its line.

The YAML is walked as a node tree (never loaded into plain objects first), so an error can say
``policy.yaml:12: grants[2].rtc.roles: 'owner' is not a role (publisher, host, ...)``.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import yaml

from config.names import ConfigError
from tokens import MAX_EXPIRE, ROLE_SPELLINGS, ROLES, Role, TokenError, check_chat_user, check_rtm_user

from .grants import ChatGrant, Grant, RtcGrant, RtmGrant, When
from .patterns import ChannelSet, IdSet, PatternError, claim_path
from .policy import Policy

__all__ = ["PolicyError", "load_policy", "read_policy"]

_STR, _MERGE = "tag:yaml.org,2002:str", "tag:yaml.org,2002:merge"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML has it: much faster
# The one way to write a number that every YAML reader and every person reads alike. PyYAML reads
# YAML 1.1, where 0123 is 83 (octal), 12:30 is 750 (base 60), 0x10, 0b11, 1_000 and +5 are numbers.
_DECIMAL = re.compile(r"0|-?[1-9][0-9]*")
# What YAML 1.2 readers (and people) take for a number where PyYAML reads text: 1e3, 08, 0o17.
_YAML12_NUMBER = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|0o[0-7]+|0x[0-9a-fA-F]+")


class PolicyError(ConfigError):
    """The policy file is missing, is not YAML, or says something the service cannot use."""


def load_policy(path: str | Path) -> Policy:
    """Read and compile the policy file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or e
        raise PolicyError(f"{path}: cannot read the policy file: {why}") from None
    return read_policy(text, source=str(path))


def read_policy(text: str, source: str = "<string>") -> Policy:
    """Parse and compile a policy; every mistake is a ``PolicyError`` naming ``source``:line."""
    return _Reader(text, source).policy()


def _decimal(text: str, value: Any) -> str:
    """The plain decimal to write for a number spelt otherwise: what a person reads in 0123, +5 or
    1_000 (123, 5, 1000), else what the spelling stands for (0x10: 16, 12:30: 750, 1e3: 1000)."""
    digits = text.replace("_", "")
    for base in (10, 0):  # 10: zeros and signs as a person reads them; 0: the 0x, 0o and 0b prefixes
        try:
            return str(int(digits, base))
        except ValueError:
            pass
    if isinstance(value, int):
        return str(value)  # base 60
    try:
        number = float(digits)
    except ValueError:
        return "a whole number in decimal"
    return str(int(number)) if number.is_integer() else "a whole number in decimal"


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if value is None:
        return "nothing (null)"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"{type(value).__name__} {value!r}"


class _Reader:
    """Builds a ``Policy`` from YAML text, walking the node tree so every error has a line."""

    def __init__(self, text: str, source: str):
        self.text, self.source = text, source
        self.loader: yaml.SafeLoader | yaml.CSafeLoader  # set by ``policy``, under which the rest runs

    def policy(self) -> Policy:
        loader = None
        try:
            self.loader = loader = _LOADER(self.text)
            root = loader.get_single_node()
            if root is None:
                raise PolicyError(f"{self.source}:1: the policy is empty; it needs a grants list")
            return self.build(root)
        except yaml.YAMLError as e:  # only reading and composing: ``value`` wraps its own
            mark = getattr(e, "problem_mark", None)
            where = f"{self.source}:{mark.line + 1}" if mark else self.source
            raise PolicyError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from None
        finally:
            if loader is not None:
                loader.dispose()

    def build(self, root: yaml.Node) -> Policy:
        top = self.mapping(root, "the policy", ("identity", "grants"), ("grants",))
        ids = {} if "identity" not in top else \
            self.mapping(top["identity"], "identity", ("subject", "groups", "uid"))
        paths = {key: self.compile(node, f"identity.{key}", claim_path, self.string(node, f"identity.{key}"))
                 for key, node in ids.items()}
        grants = [self.grant(node, f"grants[{i}]")
                  for i, node in enumerate(self.sequence(top["grants"], "grants", empty_ok=True))]
        return Policy(grants, subject=paths.get("subject", ("sub",)), groups=paths.get("groups", ("groups",)),
                   uid=paths.get("uid"), source=self.source)

    def grant(self, node: yaml.Node, where: str) -> Grant:
        keys = self.mapping(node, where, ("when", "rtc", "rtm", "chat"), ("when",))
        if len(keys) == 1:
            raise self.error(node, f"{where} gives nothing: add rtc, rtm or chat")
        return Grant(
            when=self.when(keys["when"], f"{where}.when"),
            rtc=self.rtc(keys["rtc"], f"{where}.rtc") if "rtc" in keys else None,
            rtm=self.rtm(keys["rtm"], f"{where}.rtm") if "rtm" in keys else None,
            chat=self.chat(keys["chat"], f"{where}.chat") if "chat" in keys else None,
        )

    def when(self, node: yaml.Node, where: str) -> When:
        if isinstance(node, yaml.ScalarNode) and self.value(node) == "authenticated":
            return When(everyone=True)
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{where} must be 'authenticated' or a mapping with groups "
                                   "and/or subjects")
        keys = self.mapping(node, where, ("groups", "subjects"))
        if not keys:
            raise self.error(node, f"{where} needs groups or subjects (or write: when: authenticated)")
        return When(groups=self.names(keys.get("groups"), f"{where}.groups"),
                    subjects=self.names(keys.get("subjects"), f"{where}.subjects"))

    def rtc(self, node: yaml.Node, where: str) -> RtcGrant:
        keys = self.mapping(node, where, ("channels", "roles", "uids", "max_expire", "wildcard"),
                            ("channels", "roles", "uids", "max_expire"))
        patterns = []
        for item in self.sequence(keys["channels"], f"{where}.channels"):
            patterns.append(self.string(item, f"{where}.channels"))
            self.compile(item, f"{where}.channels", ChannelSet, patterns[-1:])
        roles = []
        for item in self.sequence(keys["roles"], f"{where}.roles"):
            roles.append(self.role(item, f"{where}.roles"))
        wildcard = self.boolean(keys["wildcard"], f"{where}.wildcard") if "wildcard" in keys else False
        uids = self.ids(keys["uids"], f"{where}.uids", True)
        return RtcGrant(ChannelSet(patterns), frozenset(roles), uids,
                        self.max_expire(keys["max_expire"], where), wildcard)

    def rtm(self, node: yaml.Node, where: str) -> RtmGrant:
        keys = self.mapping(node, where, ("users", "max_expire"), ("users", "max_expire"))
        users = self.ids(keys["users"], f"{where}.users", False, check_rtm_user)
        return RtmGrant(users, self.max_expire(keys["max_expire"], where))

    def chat(self, node: yaml.Node, where: str) -> ChatGrant:
        keys = self.mapping(node, where, ("users", "app", "max_expire"), ("max_expire",))
        app = self.boolean(keys["app"], f"{where}.app") if "app" in keys else False
        if "users" not in keys and not app:
            raise self.error(node, f"{where} gives nothing: add users, or app: true")
        users = (self.ids(keys["users"], f"{where}.users", False, check_chat_user)
                 if "users" in keys else None)
        return ChatGrant(users, app, self.max_expire(keys["max_expire"], where))

    # -- shapes and scalars -------------------------------------------------------------------

    def error(self, node: yaml.Node, message: str) -> PolicyError:
        return PolicyError(f"{self.source}:{node.start_mark.line + 1}: {message}")

    def compile(self, node: yaml.Node, where: str, build: Callable, *args: Any, **kwargs: Any) -> Any:
        try:
            return build(*args, **kwargs)
        except PatternError as e:
            raise self.error(node, f"{where}: {e}") from None

    def mapping(self, node: yaml.Node, where: str, known: Sequence[str],
                required: Sequence[str] = ()) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{where} must be a mapping with the keys {', '.join(known)}")
        found: dict[str, yaml.Node] = {}
        for key, value in node.value:
            if key.tag == _MERGE:
                raise self.error(key, f"{where}: YAML merge keys (<<) are not supported")
            if not isinstance(key, yaml.ScalarNode) or key.tag != _STR:
                raise self.error(key, f"{where}: keys must be names")
            if key.value in found:
                raise self.error(key, f"{where}: duplicate key {key.value!r}")
            if key.value not in known:
                raise self.error(key, f"{where}: unknown key {key.value!r} (known: {', '.join(known)})")
            found[key.value] = value
        for name in required:
            if name not in found:
                raise self.error(node, f"{where}: {name} is required")
        return found

    def sequence(self, node: yaml.Node, where: str, empty_ok: bool = False) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, f"{where} must be a list, like [a, b]")
        if not node.value and not empty_ok:
            raise self.error(node, f"{where} must not be empty")
        return node.value

    def value(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            kind = "list" if isinstance(node, yaml.SequenceNode) else "mapping"
            raise self.error(node, f"expected a single value here, not a {kind}")
        try:
            return self.loader.construct_object(node)
        except (yaml.YAMLError, ValueError) as e:
            raise self.error(node, f"cannot read this value: {e}") from None

    def string(self, node: yaml.Node, where: str) -> str:
        value = self.value(node)
        if not isinstance(value, str):
            raise self.error(node, f"{where}: expected text; YAML reads {node.value} as {_describe(value)} "
                                   "(quote it if it is text)")
        return value

    def number(self, node: yaml.Node, where: str) -> Any:
        """A scalar of a field that takes numbers (uids, users, roles, max_expire), read only if
        a person reads it as YAML does: a number written as a plain decimal (0, 123, -5), or text
        no YAML reader takes for a number or a boolean. Quoted text is text, as written."""
        value = self.value(node)
        text, style = node.value, cast(yaml.ScalarNode, node).style  # ``value`` refused any other node
        if isinstance(value, bool) and text.lower() not in ("true", "false"):
            # yes, no, on, off: booleans to YAML 1.1 only; true and false get the field's own refusal
            raise self.error(node, f"{where}: {text} is read by YAML as {_describe(value)}; "
                                   "quote it if it is text")
        if type(value) is int and not _DECIMAL.fullmatch(text):
            reading = f"YAML reads it as {value}"
        elif isinstance(value, str) and not style and _YAML12_NUMBER.fullmatch(text) \
                and not _DECIMAL.fullmatch(text):
            reading = "YAML 1.1 reads it as text, YAML 1.2 as a number"
        else:
            return value
        raise self.error(node, f"{where}: {text} is not a plain decimal number ({reading}); "
                               f"write {_decimal(text, value)}, or quote it if it is text")

    def names(self, node: yaml.Node | None, where: str) -> frozenset[str]:
        if node is None:
            return frozenset()
        names = [self.string(item, where) for item in self.sequence(node, where)]
        if "" in names:
            raise self.error(node, f"{where}: names must not be empty")
        return frozenset(names)

    def ids(self, node: yaml.Node, where: str, uids: bool,
            rule: Callable[[str], str] | None = None) -> IdSet:
        """A uids or users list; with ``rule`` (RTM, Chat), a literal id the rule refuses is an
        error too: no request could ever match it."""
        entries = []
        for item in self.sequence(node, where):
            entries.append(self.number(item, where))
            try:
                one = IdSet(entries[-1:], uids=uids)
            except PatternError as e:
                self.literal(item, where, rule, entries[-1])  # the kind's own words, where it has them
                raise self.error(item, f"{where}: {e}") from None
            for text in one.texts:  # literals only: never self, any or a range
                self.literal(item, where, rule, text)
        return IdSet(entries, uids=uids)

    def literal(self, node: yaml.Node, where: str, rule: Callable[[str], str] | None, value: Any) -> None:
        """Refuse a literal id that breaks ``rule`` (the error names the rule)."""
        if rule is None or isinstance(value, bool) or not isinstance(value, (str, int)):
            return
        try:
            rule(str(value))
        except TokenError as e:
            raise self.error(node, f"{where}: {e} (no request could match it)") from None

    def role(self, node: yaml.Node, where: str) -> Role:
        """Any spelling the HTTP contracts accept (``tokens.ROLES``), in any case; 1 and 2 may
        be written as numbers."""
        value = self.number(node, where)
        spelling = value if isinstance(value, str) else None
        if isinstance(value, int) and not isinstance(value, bool):
            spelling = str(value)
        role = ROLES.get(spelling.strip().lower()) if spelling is not None else None
        if role is None:
            what = repr(value) if isinstance(value, str) else _describe(value)
            raise self.error(node, f"{where}: {what} is not a role ({ROLE_SPELLINGS})")
        return role

    def boolean(self, node: yaml.Node, where: str) -> bool:
        value = self.value(node)
        if not isinstance(value, bool):
            raise self.error(node, f"{where} must be true or false, got {_describe(value)}")
        return value

    def max_expire(self, node: yaml.Node, where: str) -> int:
        value = self.number(node, f"{where}.max_expire")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_EXPIRE:
            raise self.error(node, f"{where}.max_expire must be a whole number of seconds from 1 to "
                                   f"{MAX_EXPIRE}, got {_describe(value)}")
        return value
