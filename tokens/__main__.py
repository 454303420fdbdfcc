"""``python -m tokens``: build and inspect AccessToken2 tokens from the command line.

Builders print the token and nothing else on stdout; ``inspect`` prints JSON. Any error is
one line on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from . import builders as b
from .access_token import AccessToken
from .checks import MAX_EXPIRE
from .exceptions import TokenError
from .roles import ROLE_SPELLINGS, ROLES, Role
from .services import Rtm2Permission, Rtm2Resource


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2, no usage dump
        raise SystemExit(_fail(f"{self.prog}: {message}"))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _uid(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"uid must be a whole number, got {text!r}") from None


def _role(text: str) -> Role:
    try:
        return ROLES[text.strip().lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"role must be one of {ROLE_SPELLINGS}") from None


def _permission(text: str) -> tuple[int, int, str]:
    """RESOURCE:PERMISSION:NAME, e.g. message_channels:read:lobby."""
    try:
        resource, permission, name = text.split(":", 2)
        return Rtm2Resource[resource.upper()], Rtm2Permission[permission.upper()], name
    except (ValueError, KeyError):
        raise argparse.ArgumentTypeError(
            f"permission {text!r} is not RESOURCE:read|write:NAME with RESOURCE one of "
            + ", ".join(r.name.lower() for r in Rtm2Resource)) from None


def _common(p: argparse.ArgumentParser, expire_default: int | None = None) -> None:
    p.add_argument("--app-id", default=os.environ.get("APP_ID"), help="default: $APP_ID")
    p.add_argument("--app-certificate", default=os.environ.get("APP_CERTIFICATE"),
                   help="default: $APP_CERTIFICATE")
    p.add_argument("--expire", type=int, required=expire_default is None, default=expire_default,
                   help=f"token lifetime in seconds (1…{MAX_EXPIRE})")
    p.add_argument("--issue-ts", type=int, help="fix the issue time (Unix seconds)")
    p.add_argument("--salt", type=int, help="fix the salt (1…99999999)")


def _rtc_target(p: argparse.ArgumentParser, role: bool = True) -> None:
    p.add_argument("--channel", required=True)
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--uid", type=_uid, help="numeric uid (0 = any uid)")
    who.add_argument("--account", help="string user account")
    if role:
        p.add_argument("--role", type=_role, required=True, help=ROLE_SPELLINGS)
        p.add_argument("--privilege-expire", type=int, default=0,
                       help="privilege lifetime in seconds (0: as long as the token)")


def _who(a) -> int | str:
    return a.uid if a.uid is not None else a.account


def _commands() -> dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable]]:
    def rtc(a):
        return b.build_rtc_token(a.app_id, a.app_certificate, a.channel, _who(a), a.role, a.expire,
                                 a.privilege_expire, issue_ts=a.issue_ts, salt=a.salt)

    def rtc_rtm(builder):
        return lambda a: builder(a.app_id, a.app_certificate, a.channel, _who(a), a.role, a.expire,
                                 a.privilege_expire, rtm_user=a.rtm_user, rtm_expire=a.rtm_expire,
                                 issue_ts=a.issue_ts, salt=a.salt)

    def with_rtm(p):
        _rtc_target(p)
        p.add_argument("--rtm-user", help="RTM user id (default: the uid or account)")
        p.add_argument("--rtm-expire", type=int, help="RTM login lifetime (default: --expire)")

    def privileges(p):
        _rtc_target(p, role=False)
        for name in ("join", "publish-audio", "publish-video", "publish-data"):
            p.add_argument(f"--{name}-expire", type=int, required=True)

    def rtm2(p):
        p.add_argument("--user", required=True)
        p.add_argument("--permission", type=_permission, action="append", default=[],
                       help="RESOURCE:read|write:NAME, repeatable (message_channels:read:lobby)")

    def rtm2_build(a):
        perms: dict[int, dict[int, list[str]]] = {}
        for resource, permission, name in a.permission:
            perms.setdefault(resource, {}).setdefault(permission, []).append(name)
        return b.build_rtm2_token(a.app_id, a.app_certificate, a.user, a.expire, perms,
                                  issue_ts=a.issue_ts, salt=a.salt)

    def chat(a):
        if a.user is None:
            return b.build_chat_app_token(a.app_id, a.app_certificate, a.expire, issue_ts=a.issue_ts, salt=a.salt)
        return b.build_chat_user_token(a.app_id, a.app_certificate, a.user, a.expire,
                                       issue_ts=a.issue_ts, salt=a.salt)

    def apaas(p):
        p.add_argument("--room")
        p.add_argument("--user", help="user uuid (omit both --room and --user for an app token)")
        p.add_argument("--role", type=int, default=None, help="room role (with --room)")

    def apaas_build(a):
        kw = {"issue_ts": a.issue_ts, "salt": a.salt}
        if a.room is not None:
            if a.user is None or a.role is None:
                raise TokenError("a room user token needs --room, --user and --role")
            return b.build_apaas_room_user_token(a.app_id, a.app_certificate, a.room, a.user, a.role, a.expire, **kw)
        if a.user is not None:
            return b.build_apaas_user_token(a.app_id, a.app_certificate, a.user, a.expire, **kw)
        return b.build_apaas_app_token(a.app_id, a.app_certificate, a.expire, **kw)

    return {
        "rtc": ("RTC token for a uid or account", _rtc_target, rtc),
        "rtc-privileges": ("RTC token with a lifetime per privilege", privileges,
                           lambda a: b.build_rtc_token_with_privileges(
                               a.app_id, a.app_certificate, a.channel, _who(a), a.expire, a.join_expire,
                               a.publish_audio_expire, a.publish_video_expire, a.publish_data_expire,
                               issue_ts=a.issue_ts, salt=a.salt)),
        "rtc-rtm": ("RTC + RTM in one token", with_rtm, rtc_rtm(b.build_rtc_rtm_token)),
        "rtm": ("RTM login token", lambda p: p.add_argument("--user", required=True),
                lambda a: b.build_rtm_token(a.app_id, a.app_certificate, a.user, a.expire,
                                            issue_ts=a.issue_ts, salt=a.salt)),
        "rtm2": ("RTM token with resource permissions", rtm2, rtm2_build),
        "chat": ("Chat user token (--user) or app token (no --user)",
                 lambda p: p.add_argument("--user"), chat),
        "fpa": ("FPA login token", lambda p: None,
                lambda a: b.build_fpa_token(a.app_id, a.app_certificate, a.expire,
                                            issue_ts=a.issue_ts, salt=a.salt)),
        "apaas": ("APaaS room user, user or app token", apaas, apaas_build),
        "convoai": ("RTC + RTM + Conversational AI", with_rtm, rtc_rtm(b.build_conversational_ai_token)),
        "stt": ("RTC + RTM + speech-to-text", with_rtm, rtc_rtm(b.build_speech_to_text_token)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="python -m tokens", description=__doc__.splitlines()[0].replace("``", ""))
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    commands = _commands()
    for name, (help_text, configure, _) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        configure(p)
        _common(p, expire_default=MAX_EXPIRE if name == "fpa" else None)
    inspect = sub.add_parser("inspect", help="decode a token as JSON (and verify it)")
    inspect.add_argument("token")
    inspect.add_argument("--app-certificate", default=None,
                         help="verify the signature with this certificate")

    try:
        args = parser.parse_args(argv)
        if args.command == "inspect":
            token = AccessToken.parse(args.token)
            report = token.to_dict()
            if args.app_certificate is not None:
                report["signature_valid"] = token.verify(args.app_certificate)
            print(json.dumps(report, indent=2, ensure_ascii=False))
            return 0
        for flag, value in (("--app-id / APP_ID", args.app_id),
                            ("--app-certificate / APP_CERTIFICATE", args.app_certificate)):
            if not value:
                return _fail(f"{flag} is not set")
        print(commands[args.command][2](args))
        return 0
    except TokenError as e:
        return _fail(str(e))
    except SystemExit as e:  # argparse's own exits: --help (0) and errors (already printed)
        return e.code if isinstance(e.code, int) else 2


if __name__ == "__main__":
    sys.exit(main())
