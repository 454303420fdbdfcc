"""The policy: every rule as a grant/deny table, every refused file as a table with its line."""
from __future__ import annotations

import fnmatch
import json
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import tokens
from auth.models import Identity, PolicyDecision, TokenRequest
from auth.policy import Policy
from auth.policy_file import PolicyError, load_policy, read_policy
from config.names import ConfigError
from tests.conftest import examples
from tests.jwtutil import CLAIM_VALUES, json_text
from tokens import Role

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "policy.example.yaml"
PUB, SUB = Role.PUBLISHER, Role.SUBSCRIBER


def policy(text: str) -> Policy:
    return read_policy(textwrap.dedent(text))


POLICIES = {
    "main": policy("""
        identity: {subject: sub, groups: groups, uid: agora_uid}
        grants:
          - when: {groups: [hosts]}
            rtc: {channels: ["live-*", "room-{sub}"], roles: [publisher, subscriber], uids: [self], max_expire: 3600}
            rtm: {users: [self, bot-1], max_expire: 3600}
            chat: {users: [self], max_expire: 3600}
          - when: {subjects: [carol]}
            rtc: {channels: ["stage-??"], roles: [PUBLISHER], uids: [any], max_expire: 1800}
          - when: authenticated
            rtc: {channels: [lobby], roles: [subscriber], uids: [self], max_expire: 600}
        """),
    "keycloak": policy("""
        identity: {groups: realm_access.roles}
        grants:
          - when: {groups: [hosts]}
            rtc: {channels: ["live-*"], roles: [publisher], uids: [any], max_expire: 600}
        """),
    "cognito": policy("""
        identity: {subject: "cognito:username", groups: "cognito:groups"}
        grants:
          - when: {groups: [hosts], subjects: [zed]}
            rtc: {channels: ["room-{sub}"], roles: [publisher], uids: [self], max_expire: 600}
        """),
    "claims": policy("""
        grants:
          - when: authenticated
            rtc: {channels: ["team-{claims.org.id}-*", "{claims.tenant}:{sub}", "x{{y}}"],
                  roles: [publisher], uids: [any], max_expire: 600}
        """),
    "uids": policy("""
        identity: {uid: agora_uid}
        grants:
          - when: {groups: [listed]}
            rtc: {channels: ["*"], roles: [publisher], uids: [42, "43", bob, "0x10", "1000-1999", 0], max_expire: 600}
          - when: {groups: [selfish]}
            rtc: {channels: ["*"], roles: [publisher], uids: [SELF], max_expire: 600}
          - when: {groups: [anyone]}
            rtc: {channels: ["*"], roles: [publisher], uids: [any], max_expire: 600}
        """),
    "wildcard": policy("""
        grants:
          - when: {groups: [ops]}
            rtc: {channels: [x], roles: [publisher], uids: [any], max_expire: 600, wildcard: true}
          - when: authenticated
            rtc: {channels: ["*"], roles: [publisher], uids: [any], max_expire: 600, wildcard: false}
        """),
    "services": policy("""
        grants:
          - when: {groups: [admins]}
            chat: {app: true, max_expire: 600}
          - when: authenticated
            rtm: {users: [self, "007"], max_expire: 600}
            chat: {users: [self, support], max_expire: 600}
        """),
    "expire": policy("""
        grants:
          - when: authenticated
            rtc: {channels: ["*"], roles: [subscriber], uids: [any], max_expire: 86400}
          - when: authenticated
            rtc: {channels: ["*"], roles: [publisher, subscriber], uids: [any], max_expire: 600}
          - when: {groups: [vip]}
            rtc: {channels: ["*"], roles: [publisher], uids: [any], max_expire: 1800}
          - when: {groups: [vip]}
            rtc: {channels: ["other"], roles: [publisher], uids: [any], max_expire: 7200}
        """),
    "deep": policy("""
        grants:
          - when: authenticated
            rtc: {channels: [secret-a], roles: [subscriber], uids: [any], max_expire: 600}
          - when: authenticated
            rtc: {channels: [secret-b], roles: [publisher], uids: [5], max_expire: 600}
          - when: {groups: [nobody-has-this]}
            rtc: {channels: ["*"], roles: [publisher], uids: [any], max_expire: 600}
        """),
}


def rtc(channel, uid="alice", role=PUB, expire=7200):
    return TokenRequest("rtc", expire, channel=channel, uid=uid, role=role)


def rtm(user, expire=7200):
    return TokenRequest("rtm", expire, user=user)


def chat(user=None, expire=7200):
    return TokenRequest("chat", expire, user=user, app=user is None)


def claims(sub="alice", **more):
    return {"sub": sub, **more}


HOST = claims(groups=["hosts"])

# (policy, claims, request, expected): an int is the granted lifetime, a string the part refused.
CASES = {
    # when: groups, subjects, authenticated
    "group match": ("main", HOST, rtc("live-1"), 3600),
    "group mismatch falls to authenticated": ("main", claims(groups=["guests"]), rtc("live-1"), "channel"),
    "subject match": ("main", claims("carol"), rtc("stage-01", uid=9), 1800),
    "subject not listed": ("main", claims("dave"), rtc("stage-01", uid=9), "channel"),
    "authenticated fallback": ("main", claims("bob"), rtc("lobby", uid="bob", role=SUB), 600),
    "authenticated fallback, publish refused": ("main", claims("bob"), rtc("lobby", uid="bob"), "role"),
    "no grant for the service": ("main", claims("bob"), rtm("bob"), "service"),
    "roles case-insensitive": ("main", claims("carol"), rtc("stage-01", uid=9, role=PUB), 1800),
    # where the groups come from
    "keycloak dotted path": ("keycloak", claims(realm_access={"roles": ["hosts"]}), rtc("live-1", uid=1), 600),
    "keycloak other role": ("keycloak", claims(realm_access={"roles": ["guest"]}), rtc("live-1", uid=1), "service"),
    "keycloak path missing": ("keycloak", claims(groups=["hosts"]), rtc("live-1", uid=1), "service"),
    "keycloak path not a mapping": ("keycloak", claims(realm_access=["hosts"]), rtc("live-1", uid=1), "service"),
    "claim name with dots": ("keycloak", claims(**{"realm_access.roles": ["hosts"]}), rtc("live-1", uid=1), 600),
    "cognito colon claim": ("cognito", claims("x", **{"cognito:groups": ["hosts"], "cognito:username": "ann"}),
                            rtc("room-ann", uid="ann"), 600),
    "cognito subject claim": ("cognito", claims("x", **{"cognito:username": "zed"}), rtc("room-zed", uid="zed"), 600),
    "cognito subject missing": ("cognito", claims("zed"), rtc("room-zed", uid="zed"), "service"),
    "space-separated groups": ("main", claims(groups="guests hosts"), rtc("live-1"), 3600),
    "groups substring is no match": ("main", claims(groups="hostsx"), rtc("live-1"), "channel"),
    "groups of the wrong type": ("main", claims(groups={"hosts": True}), rtc("live-1"), "channel"),
    # channel patterns
    "glob star": ("main", HOST, rtc("live-"), 3600),
    "glob whole-string": ("main", HOST, rtc("xlive-1"), "channel"),
    "case-sensitive": ("main", HOST, rtc("Live-1"), "channel"),
    "question mark is one character": ("main", claims("carol"), rtc("stage-1", uid=9), "channel"),
    "question mark not two": ("main", claims("carol"), rtc("stage-001", uid=9), "channel"),
    "{sub} filled": ("main", HOST, rtc("room-alice"), 3600),
    "{sub} another's room": ("main", HOST, rtc("room-bob"), "channel"),
    "{sub} with * is literal": ("main", claims("a*", groups=["hosts"]), rtc("room-a*", uid="a*"), 3600),
    "{sub} with * does not glob": ("main", claims("a*", groups=["hosts"]), rtc("room-abc", uid="a*"), "channel"),
    "{sub} with ? does not glob": ("main", claims("a?", groups=["hosts"]), rtc("room-ab", uid="a?"), "channel"),
    "{claims.NAME} dotted": ("claims", claims(org={"id": "acme"}), rtc("team-acme-7", uid=1), 600),
    "{claims.NAME} other value": ("claims", claims(org={"id": "acme"}), rtc("team-evil-7", uid=1), "channel"),
    "{claims.NAME} missing": ("claims", claims(), rtc("team--7", uid=1), "channel"),
    "{claims.NAME} not text": ("claims", claims(org={"id": ["acme"]}), rtc("team-['acme']-7", uid=1), "channel"),
    "{claims.NAME} number": ("claims", claims("bo", tenant=7), rtc("7:bo", uid=1), 600),
    "escaped braces": ("claims", claims(), rtc("x{y}", uid=1), 600),
    # uids
    "self via uid claim": ("main", claims(groups=["hosts"], agora_uid=1234), rtc("live-1", uid=1234), 3600),
    "self via uid claim as text": ("main", claims(groups=["hosts"], agora_uid="1234"), rtc("live-1", uid=1234), 3600),
    "self uid as account text": ("main", claims(groups=["hosts"], agora_uid=1234), rtc("live-1", uid="1234"), 3600),
    "self is not someone else": ("main", claims(groups=["hosts"], agora_uid=1234), rtc("live-1", uid=1235), "uid"),
    "uid claim replaces the subject": ("main", claims(groups=["hosts"], agora_uid=1234), rtc("live-1"), "uid"),
    "self via subject": ("main", HOST, rtc("live-1", uid="alice"), 3600),
    "self via numeric subject": ("main", claims("42", groups=["hosts"]), rtc("live-1", uid=42), 3600),
    "self via subject, other account": ("main", HOST, rtc("live-1", uid="bob"), "uid"),
    "self is never uid 0": ("main", claims(groups=["hosts"], agora_uid=0), rtc("live-1", uid=0), "uid"),
    "self keyword any case": ("uids", claims(groups=["selfish"], agora_uid=77), rtc("c", uid=77), 600),
    "literal int": ("uids", claims(groups=["listed"]), rtc("c", uid=42), 600),
    "literal quoted number is numeric": ("uids", claims(groups=["listed"]), rtc("c", uid=43), 600),
    "quoted hex is an account": ("uids", claims(groups=["listed"]), rtc("c", uid="0x10"), 600),
    "quoted hex is not a uid": ("uids", claims(groups=["listed"]), rtc("c", uid=16), "uid"),
    "literal account": ("uids", claims(groups=["listed"]), rtc("c", uid="bob"), 600),
    "literal account, case-sensitive": ("uids", claims(groups=["listed"]), rtc("c", uid="Bob"), "uid"),
    "unlisted uid": ("uids", claims(groups=["listed"]), rtc("c", uid=44), "uid"),
    "range low end": ("uids", claims(groups=["listed"]), rtc("c", uid=1000), 600),
    "range high end": ("uids", claims(groups=["listed"]), rtc("c", uid=1999), 600),
    "range below": ("uids", claims(groups=["listed"]), rtc("c", uid=999), "uid"),
    "range above": ("uids", claims(groups=["listed"]), rtc("c", uid=2000), "uid"),
    "range, numeric account": ("uids", claims(groups=["listed"]), rtc("c", uid="1500"), 600),
    "range, zero-padded account": ("uids", claims(groups=["listed"]), rtc("c", uid="01500"), "uid"),
    "uid 0 by literal 0": ("uids", claims(groups=["listed"]), rtc("c", uid=0), 600),
    "uid 0 by any": ("uids", claims(groups=["anyone"]), rtc("c", uid=0), 600),
    "uid 0 not by self": ("uids", claims(groups=["selfish"], agora_uid=0), rtc("c", uid=0), "uid"),
    "any uid": ("uids", claims(groups=["anyone"]), rtc("c", uid="whoever"), 600),
    # the account "0": judged as uid 0 (docs/policy.md says why)
    "account '0' not by self (uid claim)": ("main", claims(groups=["hosts"], agora_uid=0), rtc("live-1", uid="0"),
                                            "uid"),
    "account '0' not by self (subject)": ("uids", claims("0", groups=["selfish"]), rtc("c", uid="0"), "uid"),
    "account '0' by literal 0": ("uids", claims(groups=["listed"]), rtc("c", uid="0"), 600),
    "account '0' by any": ("uids", claims(groups=["anyone"]), rtc("c", uid="0"), 600),
    # the wildcard channel
    "wildcard allowed": ("wildcard", claims(groups=["ops"]), rtc("*", uid=5), 600),
    "wildcard not allowed": ("wildcard", claims(), rtc("*", uid=5), "wildcard"),
    "pattern * is not the wildcard": ("wildcard", claims(), rtc("anything", uid=5), 600),
    "wildcard never with uid 0": ("wildcard", claims(groups=["ops"]), rtc("*", uid=0), "uid"),
    "wildcard never with account '0'": ("wildcard", claims(groups=["ops"]), rtc("*", uid="0"), "uid"),
    "wildcard with an account": ("wildcard", claims(groups=["ops"]), rtc("*", uid="ops-bot"), 600),
    # rtm and chat
    "rtm self": ("services", claims(), rtm("alice"), 600),
    "rtm literal user": ("services", claims(), rtm("007"), 600),
    "rtm other user": ("services", claims(), rtm("7"), "user"),
    "chat user self": ("services", claims(), chat("alice"), 600),
    "chat user literal": ("services", claims(), chat("support"), 600),
    "chat other user": ("services", claims(), chat("bob"), "user"),
    "chat app allowed": ("services", claims(groups=["admins"]), chat(), 600),
    "chat app not allowed": ("services", claims(), chat(), "app"),
    "rtm self via uid claim": ("main", claims(groups=["hosts"], agora_uid=1234), rtm("1234"), 3600),
    "rtm literal from a host grant": ("main", HOST, rtm("bot-1"), 3600),
    # lifetimes
    "cap: largest allowing grant": ("expire", claims(groups=["vip"]), rtc("c", uid=1), 1800),
    "cap: a larger grant that refuses does not count": ("expire", claims(), rtc("c", uid=1), 600),
    "cap: the largest of all": ("expire", claims(), rtc("c", uid=1, role=SUB, expire=50000), 50000),
    "cap: a shorter request is kept": ("expire", claims(groups=["vip"]), rtc("c", uid=1, expire=900), 900),
    # several matching grants: the deepest refusal is reported
    "deepest: uid": ("deep", claims(), rtc("secret-b", uid=6), "uid"),
    "deepest: role": ("deep", claims(), rtc("secret-a", uid=6), "role"),
    "deepest: channel": ("deep", claims(), rtc("secret-c", uid=6), "channel"),
}


@pytest.mark.parametrize("name, claims_, want, expected",
                         [(name, c, w, e) for name, (_, c, w, e) in CASES.items()], ids=list(CASES))
def test_decide(name, claims_, want, expected):
    caller = Identity(subject=claims_["sub"], issuer="https://idp.test/", claims=claims_)
    decision = POLICIES[CASES[name][0]].decide(caller, want)
    if isinstance(expected, int):
        assert decision == PolicyDecision(granted=True, expire=expected, reason="granted")
    else:
        assert (decision.granted, decision.refused, decision.expire) == (False, expected, 0)
        assert "not granted" in decision.reason or "cannot be used" in decision.reason


@pytest.mark.parametrize("want, words", [
    (rtc("secret-c", uid=6), ["channel 'secret-c'"]),
    (rtc("secret-a", uid=6), ["role publisher", "'secret-a'"]),
    (rtc("secret-b", uid=6), ["uid 6", "'secret-b'"]),
    (rtc("secret-b", uid=0), ["uid 0"]),
    (rtc("*", uid=6), ["wildcard"]),
    (rtc("*", uid=0), ["wildcard", "uid 0"]),
    (rtc("secret-b", uid="0"), ["account '0'", "uid 0"]),
    (rtc("*", uid="0"), ["wildcard", "account '0'"]),
    (rtm("bob"), ["rtm tokens"]),
])
def test_refusal_names_the_request_not_the_policy(want, words):
    decision = POLICIES["deep"].decide(Identity("alice", "i", claims()), want)
    assert not decision.granted
    for word in words:
        assert word in decision.reason
    for secret in ("secret-a" if want.channel != "secret-a" else "secret-b", "nobody-has-this", "5"):
        assert secret not in decision.reason.replace("secret-c", "")


@pytest.mark.parametrize("path, caller", [
    ("/rtc/live-1/publisher/uid/0/", "host"),
    ("/rtc/live-1/publisher/userAccount/0/", "host"),
    ("/rtc/*/publisher/uid/0/", "ops"),
    ("/rtc/*/publisher/userAccount/0/", "ops"),
    ("/rtc/%2A/subscriber/userAccount/0/", "ops"),
])
def test_the_account_0_is_refused_where_uid_0_is(client, bearer, path, caller):
    """A host whose own uid claim is 0 gets neither uid 0 nor the account "0" through ``self``;
    ops (``any``, ``wildcard: true``) never gets either with the wildcard channel."""
    headers = bearer("h", groups=("hosts",), agora_uid=0) if caller == "host" else bearer()
    r = client.get(path, headers=headers)
    assert r.status_code == 403, r.get_data(as_text=True)
    assert r.json["code"] == "403" and "0" in r.json["error"]
    assert client.get("/rtc/live-1/publisher/userAccount/0/", headers=bearer()).status_code == 200  # any


def test_subject_from_another_claim():
    p = policy("""
        identity: {subject: email}
        grants:
          - when: {subjects: [ann@example.com]}
            rtc: {channels: ["room-{sub}"], roles: [publisher], uids: [self], max_expire: 60}
        """)
    ann = Identity("a1b2", "i", {"sub": "a1b2", "email": "ann@example.com"})
    assert p.subject_of(ann.claims) == "ann@example.com"
    assert p.decide(ann, rtc("room-ann@example.com", uid="ann@example.com")).granted
    assert p.decide(ann, rtc("room-a1b2", uid="ann@example.com")).refused == "channel"
    assert p.decide(Identity("a1b2", "i", {"sub": "a1b2"}), rtc("room-a1b2", uid="a1b2")).refused == "service"


@pytest.mark.parametrize("odd", [None, 1.5, True, [1, None], {"hosts": 1}, ""])
def test_odd_claim_values_never_grant_or_raise(odd):
    p = POLICIES["main"]
    caller = Identity("alice", "i", {"sub": "alice", "groups": odd, "agora_uid": odd})
    decision = p.decide(caller, rtc("live-1", uid=str(odd)))
    assert decision.refused == "channel"
    assert p.groups_of({"groups": odd}) == frozenset()


@pytest.mark.parametrize("uid_claim", [None, "", {}, {"id": 42}, [], [42], True, False, 42.0, float("inf"),
                                       -42, -1, 2**32, 10**400, -10**400], ids=lambda v: repr(v)[:12])
def test_present_but_unusable_uid_claim_makes_self_match_nothing(uid_claim):
    """Only a missing uid claim falls back to the subject: a numeric subject would otherwise
    stand for uid 42, which may be another user's. An integer outside 0…4294967295 is no uid."""
    p = POLICIES["main"]
    caller = Identity("42", "i", claims("42", groups=["hosts"], agora_uid=uid_claim))
    assert p.self_of(caller.claims, "42") is None
    assert p.decide(caller, rtc("live-1", uid=42)).refused == "uid"
    assert p.decide(caller, rtc("live-1", uid="42")).refused == "uid"
    assert p.decide(caller, rtm("42")).refused == "user"
    assert p.decide(caller, chat("42")).refused == "user"
    without = Identity("42", "i", claims("42", groups=["hosts"]))
    assert p.decide(without, rtc("live-1", uid=42)).granted


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uid_claim=CLAIM_VALUES, groups=CLAIM_VALUES, tenant=CLAIM_VALUES)
def test_any_claim_values_are_decided_without_raising(uid_claim, groups, tenant):
    """Whatever numbers a JWT carries (10**400, -1, 1e400, -0), the policy decides without
    overflowing, and ``self`` is only ever a non-empty text or an Agora uid."""
    claims_ = json.loads(json_text(claims(groups=groups, agora_uid=uid_claim, tenant=tenant)))
    caller = Identity("alice", "i", claims_)
    value = claims_["agora_uid"]
    usable = ((isinstance(value, str) and value != "")
              or (type(value) is int and 0 <= value <= tokens.MAX_UID))
    assert (POLICIES["main"].self_of(claims_, "alice") is not None) is usable
    uid = claims_["agora_uid"] if usable else 42
    for name, want in (("main", rtc("live-1", uid=uid)), ("main", rtc("live-1", uid=0)), ("main", rtm("alice")),
                       ("claims", rtc(f"{claims_['tenant']}:alice"[:63], uid=1))):
        decision = POLICIES[name].decide(caller, want)
        assert isinstance(decision, PolicyDecision)


def test_uid_claim_null_at_a_dotted_path_matches_nothing():
    p = policy("""
        identity: {uid: agora.uid}
        grants:
          - when: authenticated
            rtm: {users: [self], max_expire: 60}
        """)
    assert p.decide(Identity("42", "i", {"sub": "42", "agora": {"uid": None}}), rtm("42")).refused == "user"
    assert p.decide(Identity("42", "i", {"sub": "42", "agora": {}}), rtm("42")).granted
    assert p.decide(Identity("42", "i", {"sub": "42", "agora": {"uid": 7}}), rtm("7")).granted


@pytest.mark.parametrize("groups, expected", [
    ("hosts", {"hosts"}),
    ("guests hosts", {"guests", "hosts"}),
    ("  guests   hosts ", {"guests", "hosts"}),
    ("", set()),
    ("   ", set()),
    ("fans\u00a0hosts", {"fans\u00a0hosts"}),  # no-break space
    ("fans\u2003hosts", {"fans\u2003hosts"}),  # em space
    ("fans\u3000hosts", {"fans\u3000hosts"}),  # ideographic space
    ("fans\u2028hosts", {"fans\u2028hosts"}),  # line separator
    ("fans\thosts", {"fans\thosts"}),
    ("fans\nhosts", {"fans\nhosts"}),
], ids=repr)
def test_group_string_is_split_on_ascii_spaces_only(groups, expected):
    """As OAuth scope strings are (RFC 6749 §3.3): other whitespace is part of a group's name."""
    p = POLICIES["main"]
    assert p.groups_of({"groups": groups}) == frozenset(expected)
    granted = p.decide(Identity("alice", "i", claims(groups=groups)), rtc("live-1"))
    assert granted.granted is ("hosts" in expected)


# Glob semantics: the regex path (fixed patterns) and the template path (filled per request)
# must both agree with fnmatch on an alphabet with no other special characters.
@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text("ab*?", min_size=1, max_size=8), st.text("ab", max_size=8), st.text("ab", min_size=1, max_size=3))
@example(pattern="**b", channel="bab", value="ab")  # "*ab*b": the middle run must end before the last
def test_glob_matches_like_fnmatch(pattern, channel, value):
    expected = fnmatch.fnmatchcase(channel, pattern)
    fixed = policy(f"""
        grants:
          - when: authenticated
            rtc: {{channels: ["{pattern}"], roles: [publisher], uids: [any], max_expire: 60}}
        """)
    caller = Identity("u", "i", {"sub": "u", "v": value})
    assert fixed.decide(caller, rtc(channel, uid=1)).granted is expected
    cut = len(pattern) // 2
    templated = policy(f"""
        grants:
          - when: authenticated
            rtc: {{channels: ["{pattern[:cut]}{{claims.v}}{pattern[cut:]}"], roles: [publisher],
                   uids: [any], max_expire: 60}}
        """)
    filled = fnmatch.fnmatchcase(channel, pattern[:cut] + value + pattern[cut:])
    assert templated.decide(caller, rtc(channel, uid=1)).granted is filled


def test_many_stars_do_not_backtrack_for_ever():
    p = policy("""
        grants:
          - when: authenticated
            rtc: {channels: ["*a*a*a*a*a*a*a*a*b", "{sub}*a*a*a*a*a*a*b"], roles: [publisher], uids: [any],
                  max_expire: 60}
        """)
    decision = p.decide(Identity("a", "i", {"sub": "a"}), rtc("a" * 63, uid=1))
    assert decision.refused == "channel"


# (policy text, line of the mistake, words the message must hold)
INVALID = {
    "empty file": ("", 1, "empty"),
    "not YAML": ("grants: [\n  - when: authenticated\n", 2, "not valid YAML"),
    "two documents": ("grants: []\n---\ngrants: []\n", 2, "not valid YAML"),
    "not a mapping": ("- when: authenticated\n", 1, "must be a mapping"),
    "grants missing": ("identity: {subject: sub}\n", 1, "grants is required"),
    "grants not a list": ("grants: {when: authenticated}\n", 1, "grants must be a list"),
    "unknown top-level key": ("grants: []\ngrant: []\n", 2, "unknown key 'grant'"),
    "unknown identity key": ("identity:\n  subject: sub\n  group: groups\ngrants: []\n", 3, "unknown key 'group'"),
    "identity path empty part": ("identity:\n  groups: realm_access..roles\ngrants: []\n", 2, "empty part"),
    "identity path not text": ("identity:\n  uid: 12\ngrants: []\n", 2, "expected text"),
    "duplicate key": ("grants:\n  - when: authenticated\n    rtm: {users: [self], max_expire: 60}\n"
                      "    rtm: {users: [any], max_expire: 60}\n", 4, "duplicate key 'rtm'"),
    "merge key": ("grants:\n  - when: authenticated\n    <<: {rtm: {users: [self], max_expire: 60}}\n", 3,
                  "merge keys"),
    "grant without when": ("grants:\n  - rtm: {users: [self], max_expire: 60}\n", 2, "when is required"),
    "grant gives nothing": ("grants:\n  - when: authenticated\n", 2, "gives nothing"),
    "unknown grant key": ("grants:\n  - when: authenticated\n    rtx: {}\n", 3, "unknown key 'rtx'"),
    "when misspelt": ("grants:\n  - when: everyone\n    rtm: {users: [self], max_expire: 60}\n", 2,
                      "'authenticated' or a mapping"),
    "when empty": ("grants:\n  - when: {}\n    rtm: {users: [self], max_expire: 60}\n", 2, "needs groups or subjects"),
    "when groups not a list": ("grants:\n  - when: {groups: hosts}\n    rtm: {users: [self], max_expire: 60}\n", 2,
                               "must be a list"),
    "when unknown key": ("grants:\n  - when: {roles: [hosts]}\n    rtm: {users: [self], max_expire: 60}\n", 2,
                         "unknown key 'roles'"),
    "when subject a number": ("grants:\n  - when:\n      subjects: [alice,\n        42]\n"
                              "    rtm: {users: [self], max_expire: 60}\n", 4, "quote it"),
    "rtc key misspelt": ("grants:\n  - when: authenticated\n    rtc:\n      channel: [a]\n", 4, "unknown key 'channel'"),
    "rtc max_expire missing": ("grants:\n  - when: authenticated\n    rtc:\n      channels: [a]\n      roles: [publisher]\n"
                               "      uids: [self]\n", 4, "max_expire is required"),
    "channels not a list": ("grants:\n  - when: authenticated\n    rtc:\n      channels: lobby\n      roles: [publisher]\n"
                            "      uids: [self]\n      max_expire: 60\n", 4, "must be a list"),
    "channels empty": ("grants:\n  - when: authenticated\n    rtc:\n      channels: []\n      roles: [publisher]\n"
                       "      uids: [self]\n      max_expire: 60\n", 4, "must not be empty"),
    "bad role": ("grants:\n  - when: authenticated\n    rtc:\n      channels: [a]\n      roles: [publisher,\n"
                 "        admin]\n      uids: [self]\n      max_expire: 60\n", 6, "'admin' is not a role (publisher, host,"),
    "role a number": ("grants:\n  - when: authenticated\n    rtc: {channels: [a], roles: [3], uids: [self], "
                      "max_expire: 60}\n", 3, "the number 3 is not a role"),
    "role a boolean": ("grants:\n  - when: authenticated\n    rtc: {channels: [a], roles: [yes], uids: [self], "
                       "max_expire: 60}\n", 3, "yes is read by YAML as the boolean true; quote it"),
    "role true": ("grants:\n  - when: authenticated\n    rtc: {channels: [a], roles: [true], uids: [self], "
                  "max_expire: 60}\n", 3, "the boolean true is not a role"),
    "wildcard not a boolean": ("grants:\n  - when: authenticated\n    rtc: {channels: [a], roles: [publisher],\n"
                               "          uids: [self], max_expire: 60,\n          wildcard: 'yes'}\n", 5,
                               "true or false"),
}
_PATTERN = "grants:\n  - when: authenticated\n    rtc:\n      roles: [publisher]\n      uids: [any]\n" \
           "      max_expire: 60\n      channels:\n        - ok\n        - {}\n"
INVALID.update({f"pattern {name}": (_PATTERN.format(pattern), 9, words) for name, pattern, words in [
    ("empty", '""', "empty"),
    ("bad character", '"live/*"', "'/'"),
    ("non-ASCII", '"café"', "'é'"),
    ("unknown placeholder", '"room-{user}"', "unknown placeholder {user}"),
    ("lone brace", '"room-{"', "lone '{'"),
    ("lone closing brace", '"room}"', "lone '}'"),
    ("empty claim path", '"room-{claims.}"', "empty part"),
    ("too long", '"' + "x" * 64 + '"', "at most 63 bytes"),
    ("a number", "12:30", "quote it"),
    ("a boolean", "on", "quote it"),
    ("a list", "[a, b]", "not a list"),
]})
_UIDS = "grants:\n  - when: authenticated\n    rtc:\n      channels: [a]\n      roles: [publisher]\n" \
        "      max_expire: 60\n      uids:\n        - self\n        - {}\n"
INVALID.update({f"uid {name}": (_UIDS.format(uid), 9, words) for name, uid, words in [
    ("range reversed", '"2000-1000"', "LOW-HIGH"),
    ("range from 0", '"0-999"', "uid 0 is granted only by any or a literal 0"),
    ("range too high", '"1-4294967296"', "4294967295"),
    ("too large", "4294967296", "out of range"),
    ("quoted too large", '"4294967296"', "out of range"),
    ("negative", "-1", "out of range"),
    ("boolean", "true", "not True"),
    ("float", "1.5", "not 1.5"),
    ("mapping", "{a: 1}", "not a mapping"),
    ("account too long", '"' + "a" * 256 + '"', "at most 255"),
]})
_EXPIRE = "grants:\n  - when: authenticated\n    rtm:\n      users: [self]\n      max_expire: {}\n"
INVALID.update({f"max_expire {value}": (_EXPIRE.format(value), 5, "from 1 to 86400") for value in [
    "0", "86401", '"3600"', "true", "1.5", "-5", "null",
]})
INVALID.update({
    "rtm users missing": ("grants:\n  - when: authenticated\n    rtm: {max_expire: 60}\n", 3, "users is required"),
    "chat gives nothing": ("grants:\n  - when: authenticated\n    chat: {max_expire: 60}\n", 3, "gives nothing"),
    "chat app not a boolean": ("grants:\n  - when: authenticated\n    chat: {app: 1, max_expire: 60}\n", 3,
                               "true or false"),
    "chat unknown key": ("grants:\n  - when: authenticated\n    chat: {apps: true, max_expire: 60}\n", 3,
                         "unknown key 'apps'"),
})


@pytest.mark.parametrize("text, line, words", INVALID.values(), ids=list(INVALID))
def test_invalid_policy_is_refused_with_its_line(text, line, words):
    with pytest.raises(PolicyError) as info:
        read_policy(text, source="policy.yaml")
    message = str(info.value)
    assert message.startswith(f"policy.yaml:{line}: "), message
    assert words in message, message


def test_policy_error_is_a_config_error_naming_the_file(tmp_path):
    assert issubclass(PolicyError, ConfigError)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope\.yaml: cannot read"):
        load_policy(missing)
    bad = tmp_path / "bad.yaml"
    bad.write_text("grants:\n  - when: nobody\n    rtm: {users: [self], max_expire: 60}\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:2: "):
        load_policy(bad)


@pytest.mark.parametrize("spelling", [*tokens.ROLES, "Host", " audience ", 1, 2])
def test_the_policy_takes_every_role_spelling_the_contracts_take(spelling):
    """One table (tokens.ROLES) for the policy file, the HTTP contracts and the CLI."""
    written = f'"{spelling}"' if isinstance(spelling, str) else spelling
    p = read_policy(f"grants:\n  - when: authenticated\n    rtc: {{channels: [a], roles: [{written}], "
                    "uids: [any], max_expire: 60}\n")
    want = tokens.ROLES[str(spelling).strip().lower()]
    (granted,) = p.grants[0].rtc.roles
    assert granted is want


def test_empty_grants_deny_everything():
    p = read_policy("grants: []\n")
    assert p.decide(Identity("a", "i", {"sub": "a"}), rtm("a")) == PolicyDecision(
        granted=False, reason="rtm tokens are not granted to this caller", refused="service")


def test_example_policy_loads_and_fits_the_demo_jwt():
    p = load_policy(EXAMPLE)
    alice = Identity("alice", "demo", {"sub": "alice", "groups": ["hosts"]})
    assert p.decide(alice, rtc("live-demo", uid="alice", expire=3600)).granted
    assert p.decide(alice, rtc("room-alice", uid="alice", expire=600)).expire == 600
    assert p.decide(alice, rtm("alice")).expire == 3600
    assert p.decide(alice, chat()).refused == "app"
    guest = Identity("bob", "demo", {"sub": "bob"})
    assert p.decide(guest, rtc("lobby", uid="bob", role=SUB)).expire == 600
    assert p.decide(guest, rtc("live-demo", uid="bob")).refused == "channel"
