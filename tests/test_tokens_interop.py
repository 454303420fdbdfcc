"""Our tokens against Agora's own implementation (npm ``agora-token``, pinned in tests/interop).

A few hundred random inputs (a fixed seed) across every builder go to one node process
(tests/interop/agora.js), which builds each token twice: with AccessToken2 and the service
classes as the builder does (``mirror``), and with Agora's builder itself, its issue time and
salt pinned (``builder``). Agora's parser reads and verifies ours; ours reads and verifies theirs;
and every one of our token strings must be byte-identical to Agora's.

Byte identity needs a node whose zlib deflates as this Python's does; tests/node_peer.py finds
one (installing node and agora-token if missing, fetching Debian's nodejs if the machine's node
bundles another zlib) and says why it matters.

The inputs keep to Agora's rules for names (tokens/identifiers.py), which the builders enforce:
channel names, RTC accounts and RTM user ids from Agora's ASCII set, Chat user ids from
a-z0-9_-. ; the free text of APaaS uuids and RTM 2 resource names carries the multibyte UTF-8.

Known difference, kept out of the random inputs and pinned in a test of its own: Agora's
ServiceApaas writes room role 0 as -1 (``role || -1``); we write the role given.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import string
import zlib

import pytest

import tokens
from tests.credentials import APP_ID
from tests.credentials import APP_CERTIFICATE as CERT  # the short name these tests use
from tests.node_peer import Probe, stock_zlib_node
from tokens import Role

pytestmark = pytest.mark.integration

WRONG_CERT = "5CFd2fd1755d40ecb72977518be15d30"
SEED = 20_07
CASES_PER_KIND = 26
SPECIAL = " !#$%&()+-:;<=.>?@[]^_{}|~,"  # Agora's characters besides letters and digits
CHANNEL_ALPHABET = string.ascii_letters + string.digits + SPECIAL  # RTC accounts and RTM user ids too
CHAT_SPECIAL = "_-."
CHAT_ALPHABET = string.ascii_lowercase + string.digits + CHAT_SPECIAL
MULTIBYTE = "é中😀ß"  # 2-, 3- and 4-byte UTF-8, in the free text of APaaS uuids and RTM 2 resource names
MAX_CHANNEL, MAX_ACCOUNT, MAX_RTM_USER, MAX_CHAT_USER, MAX_TEXT = 63, 255, 63, 64, 255


@pytest.fixture(scope="module")
def node() -> Probe:
    """A node whose zlib deflates every random case's content as this Python's does, with
    agora-token installed (tests/node_peer.py)."""
    return stock_zlib_node([_content(case["token"]) for case in _cases()])


def agora(node: Probe, cases: list[dict]) -> list[dict]:
    """Run a batch of cases through tests/interop/agora.js (one node process): one result per case."""
    done = node.node.run("agora.js", json.dumps(cases), 300)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["zlib"] == node.zlib
    assert len(out["results"]) == len(cases)
    for case, result in zip(cases, out["results"], strict=True):
        assert "error" not in result, f"agora.js failed on {_describe(case)}: {result['error']}"
    return out["results"]


class Inputs:
    """Random inputs in Agora's allowed ranges, edges included in rotation: the shortest and the
    longest of each kind of name, the longest holding every special character its kind allows."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def _size(self, i: int, longest: int) -> int:
        r = self.rng
        return (1, longest, r.randint(1, 40), r.randint(1, longest))[i % 4]

    def _name(self, alphabet: str, size: int, longest: int, special: str) -> str:
        """``size`` characters of ``alphabet``; at the ``longest`` size, each of ``special`` among them."""
        r = self.rng
        every = special if size == longest else ""
        chars = [*every, *(r.choice(alphabet) for _ in range(size - len(every)))]
        r.shuffle(chars)
        return "".join(chars)

    def channel(self, i: int) -> str:
        if i % 8 == 7:
            return "*"  # the wildcard channel
        return self._name(CHANNEL_ALPHABET, self._size(i, MAX_CHANNEL), MAX_CHANNEL, SPECIAL)

    def account(self, i: int) -> str:
        """An RTC user account: 1-255 bytes of the channel name's characters."""
        return self._name(CHANNEL_ALPHABET, self._size(i, MAX_ACCOUNT), MAX_ACCOUNT, SPECIAL)

    def rtm_user(self, i: int) -> str:
        """An RTM user id: 1-63 bytes of the same characters, no leading space, not "0" or "null"."""
        while True:
            user = self._name(CHANNEL_ALPHABET, self._size(i, MAX_RTM_USER), MAX_RTM_USER, SPECIAL)
            if user[0] != " " and user not in ("0", "null"):
                return user

    def chat_user(self, i: int) -> str:
        """A Chat user id: 1-64 characters of a-z, 0-9, '_', '-' and '.'."""
        return self._name(CHAT_ALPHABET, self._size(i, MAX_CHAT_USER), MAX_CHAT_USER, CHAT_SPECIAL)

    def text(self, max_bytes: int = MAX_TEXT) -> str:
        """Free text (APaaS uuids, RTM 2 resource names): printable ASCII and multibyte characters,
        1 to ``max_bytes`` bytes of UTF-8."""
        r = self.rng
        budget = r.choice((1, max_bytes, r.randint(1, 40), r.randint(1, max_bytes)))
        out, used = [], 0
        while used < budget:
            c = r.choice(MULTIBYTE) if r.random() < 0.1 else ""
            if not c or used + len(c.encode()) > budget:
                c = chr(r.randint(0x21, 0x7E))
            out.append(c)
            used += len(c.encode())
        return "".join(out)

    def uid(self, i: int) -> int | str:
        r = self.rng
        if i % 5 == 4:
            return self.account(i // 5)  # the shortest at i = 4, the longest at i = 9
        return (0, 2**32 - 1, r.randint(1, 2**32 - 2), r.randint(1, 99_999))[i % 5]

    def lifetime(self, i: int, *, zero: bool = False) -> int:
        r = self.rng
        return (1 - zero, 86_400, r.randint(1, 86_400), r.randint(1, 3_600))[(i // 3) % 4]

    def header(self, i: int) -> dict:
        r = self.rng
        return {
            "issue_ts": (1, 2**32 - 1, r.randint(1_600_000_000, 1_900_000_000), r.randint(1, 2**32 - 1))[i % 4],
            "salt": (1, 99_999_999, r.randint(1, 99_999_999))[(i // 4) % 3],
        }

    def rtc(self, i: int) -> dict:
        return {"channel": self.channel(i), "uid": self.uid(i), "role": self.rng.choice(list(Role)),
                "expire": self.lifetime(i), "privilege_expire": self.lifetime(i + 1, zero=True)}

    def permissions(self) -> dict[int, dict[int, list[str]]]:
        r = self.rng
        return {
            resource: {permission: [self.text(64) for _ in range(r.randint(0, 3))]
                       for permission in r.sample(range(2), r.randint(1, 2))}
            for resource in r.sample(range(5), r.randint(0, 5))
        }


def _rtc_rtm(inputs: Inputs, i: int) -> dict:
    a = inputs.rtc(i)
    # The RTM user defaults to the uid's text when i is even. An account then has to be an RTM
    # user id as well (under 64 bytes, no leading space): the shortest, the longest, a random one.
    if i % 2 == 0 and isinstance(a["uid"], str):
        a["uid"] = inputs.rtm_user(i // 10)
    # uid 0 names no RTM user: give one.
    a["rtm_user"] = inputs.rtm_user(i) if a["uid"] == 0 or i % 2 else None
    a["rtm_expire"] = inputs.lifetime(i + 2, zero=True) if i % 3 else None
    return a


def _rtc_rtm_node(a: dict) -> dict:
    e = a["privilege_expire"]
    rtm_user = a["rtm_user"] if a["rtm_user"] is not None else tokens.services.uid_text(a["uid"])
    return {"channel": a["channel"], "account": a["uid"], "role": int(a["role"]), "expire": a["expire"],
            "join": e, "audio": e, "video": e, "data": e, "rtm_user": rtm_user,
            "rtm_expire": a["expire"] if a["rtm_expire"] is None else a["rtm_expire"]}


def _rtc_rtm_ours(builder):
    return lambda a, h: builder(APP_ID, CERT, a["channel"], a["uid"], a["role"], a["expire"],
                                a["privilege_expire"], rtm_user=a["rtm_user"], rtm_expire=a["rtm_expire"], **h)


def _rtc_privileges(inputs: Inputs, i: int) -> dict:
    a = inputs.rtc(i)
    a.update(zip(("join", "audio", "video", "data"), (inputs.lifetime(i + k, zero=True) for k in range(4)), strict=True))
    return a


# kind → (random args, our build, the args agora.js takes)
KINDS = {
    "rtc": (
        lambda s, i: s.rtc(i),
        lambda a, h: tokens.build_rtc_token(APP_ID, CERT, a["channel"], a["uid"], a["role"], a["expire"],
                                            a["privilege_expire"], **h),
        lambda a: {"channel": a["channel"], "account": a["uid"], "role": int(a["role"]),
                   "expire": a["expire"], "privilege_expire": a["privilege_expire"]},
    ),
    "rtc_privileges": (
        _rtc_privileges,
        lambda a, h: tokens.build_rtc_token_with_privileges(
            APP_ID, CERT, a["channel"], a["uid"], a["expire"], a["join"], a["audio"], a["video"], a["data"], **h),
        lambda a: {"channel": a["channel"], "account": a["uid"], "expire": a["expire"],
                   **{k: a[k] for k in ("join", "audio", "video", "data")}},
    ),
    "rtc_rtm": (_rtc_rtm, _rtc_rtm_ours(tokens.build_rtc_rtm_token), _rtc_rtm_node),
    "convoai": (_rtc_rtm, _rtc_rtm_ours(tokens.build_conversational_ai_token), _rtc_rtm_node),
    "stt": (_rtc_rtm, _rtc_rtm_ours(tokens.build_speech_to_text_token), _rtc_rtm_node),
    "rtm": (
        lambda s, i: {"user": s.rtm_user(i), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_rtm_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "rtm2": (
        lambda s, i: {"user": s.rtm_user(i), "expire": s.lifetime(i), "permissions": s.permissions()},
        lambda a, h: tokens.build_rtm2_token(APP_ID, CERT, a["user"], a["expire"], a["permissions"], **h),
        lambda a: {"user": a["user"], "expire": a["expire"],
                   "permissions": [[r, p, names] for r, ps in a["permissions"].items() for p, names in ps.items()]},
    ),
    "chat_user": (
        lambda s, i: {"user": s.chat_user(i), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_chat_user_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "chat_app": (
        lambda s, i: {"expire": s.lifetime(i)},
        lambda a, h: tokens.build_chat_app_token(APP_ID, CERT, a["expire"], **h),
        dict,
    ),
    "fpa": (
        lambda s, i: {},
        lambda a, h: tokens.build_fpa_token(APP_ID, CERT, **h),
        dict,
    ),
    "apaas_room_user": (
        lambda s, i: {"room": s.text(), "user": s.text(), "expire": s.lifetime(i),
                      # not 0: Agora's ServiceApaas writes role 0 as -1 (test_apaas_role_zero)
                      "role": s.rng.choice((-32768, -1, 1, 2, 32767, s.rng.randint(1, 32767)))},
        lambda a, h: tokens.build_apaas_room_user_token(APP_ID, CERT, a["room"], a["user"], a["role"],
                                                        a["expire"], **h),
        dict,
    ),
    "apaas_user": (
        lambda s, i: {"user": s.text(), "expire": s.lifetime(i)},
        lambda a, h: tokens.build_apaas_user_token(APP_ID, CERT, a["user"], a["expire"], **h),
        dict,
    ),
    "apaas_app": (
        lambda s, i: {"expire": s.lifetime(i)},
        lambda a, h: tokens.build_apaas_app_token(APP_ID, CERT, a["expire"], **h),
        dict,
    ),
}


def _case(kind: str, node_args: dict, header: dict, ours: str) -> dict:
    return {"kind": kind, "args": node_args, "app_id": APP_ID, "app_certificate": CERT,
            "wrong_certificate": WRONG_CERT, "token": ours, **header}


@functools.cache
def _cases() -> tuple[dict, ...]:
    """Every random case (a fixed seed), with our token for it."""
    inputs = Inputs(random.Random(SEED))
    cases = []
    for kind, (make_args, build, to_node) in KINDS.items():
        for i in range(CASES_PER_KIND):
            args, header = make_args(inputs, i), inputs.header(i)
            cases.append(_case(kind, to_node(args), header, build(args, header)))
    return tuple(cases)


class Batch:
    """Every random case, our token for it, and what agora.js made of it."""

    def __init__(self, node: Probe, rows: list[tuple[dict, str, dict]]):
        self.node = node
        self.rows = rows

    def of(self, kind: str) -> list[tuple[dict, str, dict]]:
        return [row for row in self.rows if row[0]["kind"] == kind]


@pytest.fixture(scope="module")
def batch(node) -> Batch:
    """All random cases, run through one node process."""
    cases = list(_cases())
    results = agora(node, cases)
    return Batch(node, [(case, case["token"], result) for case, result in zip(cases, results, strict=True)])


def _describe(case: dict) -> str:
    return json.dumps({k: case.get(k) for k in ("kind", "args", "issue_ts", "salt")}, ensure_ascii=False)


def _content(token: str) -> bytes:
    """What the zlib stream carries: bytes(signature) + signing_info."""
    return zlib.decompress(base64.b64decode(token[3:]))


@pytest.mark.parametrize("kind", KINDS)
def test_same_content_as_agora(batch, kind):
    for case, ours, result in batch.of(kind):
        assert result["mirror"] == result["builder"], f"agora.js mirror drifted from Agora's builder: {_describe(case)}"
        assert _content(ours) == _content(result["builder"]), f"differs from Agora: {_describe(case)}"


@pytest.mark.parametrize("kind", KINDS)
def test_byte_identical_to_agora(batch, kind):
    for case, ours, result in batch.of(kind):
        assert ours == result["builder"], f"differs from Agora ({batch.node}): {_describe(case)}"


def test_node_zlib_is_stock_zlib(batch):
    """What makes whole strings comparable: node's zlib writes our bytes for our content."""
    differ = [case for case, ours, result in batch.rows if result["reencoded"] != ours]
    assert not differ, (f"node {batch.node.version} (zlib {batch.node.zlib}) deflates {len(differ)} of "
                        f"{len(batch.rows)} token contents unlike this Python's zlib {zlib.ZLIB_RUNTIME_VERSION}, "
                        f"e.g. {_describe(differ[0])}")


def _as_agora_reports(token: tokens.AccessToken) -> dict:
    """Our parse in the shape agora.js reports, for comparison."""
    def fields(service) -> dict:
        out = dict(service.fields_dict())
        if isinstance(service, tokens.ServiceApaas):
            out["role"] = service.role & 0xFFFF  # Agora's getInt16 reads the role unsigned
        if isinstance(service, tokens.ServiceRtm2):
            out["permissions"] = {str(r): {str(p): names for p, names in ps.items()}
                                  for r, ps in service.permissions.items()}
        return out

    return {"app_id": token.app_id, "issue_ts": token.issue_ts, "expire": token.expire, "salt": token.salt,
            "services": [{"type": s.TYPE, "privileges": {str(k): v for k, v in s.privileges.items()},
                          "fields": fields(s)} for s in token.services]}


@pytest.mark.parametrize("kind", KINDS)
def test_agora_reads_and_verifies_ours(batch, kind):
    for case, ours, result in batch.of(kind):
        parsed = result["parsed"]
        assert parsed["ok"] and parsed["verified"], f"Agora refuses ours: {_describe(case)}"
        assert parsed["verified_with_wrong_certificate"] is False
        reported = {k: parsed[k] for k in ("app_id", "issue_ts", "expire", "salt", "services")}
        assert reported == _as_agora_reports(tokens.parse_token(ours)), _describe(case)


@pytest.mark.parametrize("kind", KINDS)
def test_we_read_and_verify_theirs(batch, kind):
    for case, _, result in batch.of(kind):
        theirs = tokens.parse_token(result["builder"])
        assert theirs.verify(CERT) and not theirs.verify(WRONG_CERT), _describe(case)
        assert (theirs.app_id, theirs.issue_ts, theirs.salt) == (APP_ID, case["issue_ts"], case["salt"])


def test_random_inputs_cover_the_edges(batch):
    def args(*kinds: str) -> list[dict]:
        return [case["args"] for kind in kinds for case, _, _ in batch.of(kind)]

    def sizes(names) -> set[int]:
        return {len(n.encode()) for n in names}

    rtc = args("rtc")
    assert {0, 2**32 - 1} <= {a["account"] for a in rtc}
    assert {1, 86_400} <= {a["expire"] for a in rtc}
    assert {1, 2} <= {a["role"] for a in rtc}
    rtc_rtm = args("rtc_rtm", "convoai", "stt")
    channels = [a["channel"] for a in rtc + rtc_rtm + args("rtc_privileges")]
    accounts = [a["account"] for a in rtc + rtc_rtm + args("rtc_privileges") if isinstance(a["account"], str)]
    rtm_users = [a["rtm_user"] for a in rtc_rtm] + [a["user"] for a in args("rtm", "rtm2")]
    chat_users = [a["user"] for a in args("chat_user")]
    assert "*" in channels and {1, MAX_CHANNEL} <= sizes(channels)
    assert {1, MAX_ACCOUNT} <= sizes(accounts)
    assert {1, MAX_RTM_USER} <= sizes(rtm_users)
    assert {1, MAX_CHAT_USER} <= {len(u) for u in chat_users}
    for names in channels, accounts, rtm_users:
        assert set(SPECIAL) <= set("".join(names))
    assert set(CHAT_SPECIAL) <= set("".join(chat_users))
    # the RTM user left to default: to an account, and to a numeric uid
    assert any(isinstance(a["account"], str) and a["rtm_user"] == a["account"] for a in rtc_rtm)
    assert any(isinstance(a["account"], int) and a["rtm_user"] == str(a["account"]) for a in rtc_rtm)
    free_text = ([a[k] for a in args("apaas_room_user") for k in ("room", "user")]
                 + [a["user"] for a in args("apaas_user")]
                 + [n for a in args("rtm2") for _, _, names in a["permissions"] for n in names])
    assert any(c in text for text in free_text for c in MULTIBYTE)
    assert MAX_TEXT in sizes(free_text)
    assert len(batch.rows) >= 300


def test_apaas_role_zero_is_the_one_known_difference(node):
    """Agora's ServiceApaas writes ``role || -1``: role 0 becomes -1. We write 0 as given."""
    header = {"issue_ts": 1111111, "salt": 1}
    args = {"room": "room", "user": "user", "role": 0, "expire": 600}
    ours = tokens.build_apaas_room_user_token(APP_ID, CERT, "room", "user", 0, 600, **header)
    (result,) = agora(node, [_case("apaas_room_user", args, header, ours)])
    theirs = tokens.parse_token(result["builder"])
    assert _content(ours) != _content(result["builder"])
    assert [s.role for s in theirs.services if isinstance(s, tokens.ServiceApaas)] == [-1]
    assert [s.role for s in tokens.parse_token(ours).services if isinstance(s, tokens.ServiceApaas)] == [0]
    assert result["parsed"]["verified"] and theirs.verify(CERT)
    # with role -1 given explicitly the two agree again
    minus_one = tokens.build_apaas_room_user_token(APP_ID, CERT, "room", "user", -1, 600, **header)
    assert _content(minus_one) == _content(result["builder"])


def test_chat_user_id_of_a_room_user_is_md5_of_the_user(batch):
    for case, ours, _ in batch.of("apaas_room_user"):
        chat = next(s for s in tokens.parse_token(ours).services if isinstance(s, tokens.ServiceChat))
        assert chat.user_id == hashlib.md5(case["args"]["user"].encode()).hexdigest()
