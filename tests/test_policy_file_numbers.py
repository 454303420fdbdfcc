"""A number in the policy file means what a person reading it sees, or the file is refused.

PyYAML reads YAML 1.1: unquoted, ``0123`` is 83 (octal), ``12:30`` is 750 (base 60), ``0x10`` is
16, ``1_000`` is 1000, ``on`` is true; and YAML 1.2 readers take ``1e3`` and ``08`` for numbers
where PyYAML reads text. In every field that takes numbers (uids, users, roles, max_expire) an
unquoted number must be a plain decimal; anything else stops the service, and a HUP, with the
line. Quoted values are text, exactly as written.
"""
from __future__ import annotations

import pytest

from auth.models import Identity, TokenRequest
from auth.policy_file import PolicyError, load_policy, read_policy
from tokens import Role

HEAD = "grants:\n  - when: authenticated\n"
# Each puts the value on line 4, in a field that takes numbers.
FIELDS = {
    "rtc.uids": HEAD + "    rtc: {{channels: [c], roles: [publisher], max_expire: 60,\n"
                       "          uids: [self, {}]}}\n",
    "rtc.roles": HEAD + "    rtc: {{channels: [c], uids: [any], max_expire: 60,\n"
                        "          roles: [publisher, {}]}}\n",
    "rtc.max_expire": HEAD + "    rtc: {{channels: [c], uids: [any], roles: [publisher],\n"
                             "          max_expire: {}}}\n",
    "rtm.users": HEAD + "    rtm: {{max_expire: 60,\n          users: [self, {}]}}\n",
    "rtm.max_expire": HEAD + "    rtm: {{users: [self],\n          max_expire: {}}}\n",
    "chat.users": HEAD + "    chat: {{max_expire: 60,\n          users: [self, {}]}}\n",
    "chat.max_expire": HEAD + "    chat: {{users: [self],\n          max_expire: {}}}\n",
}

# (as written, unquoted) -> the plain decimal the message suggests
NOT_PLAIN = {
    "0123": "123",  # YAML 1.1: octal 83
    "00123": "123",  # 83
    "0100": "100",  # 64
    "00": "0",  # octal 0
    "-0": "0",
    "+5": "5",
    "1_000": "1000",
    "0x10": "16",
    "0b11": "3",
    "12:30": "750",  # base 60
    "1e3": "1000",  # text to PyYAML, 1000.0 to YAML 1.2
    "0o17": "15",  # text to PyYAML, 15 to YAML 1.2
    "08": "8",  # text to PyYAML (not octal), 8 to YAML 1.2
    "019": "19",
}
BOOLEANS = ["yes", "no", "on", "off", "Yes", "OFF"]  # true and false: each field refuses them in its words


def refused(text: str, *words: str) -> str:
    with pytest.raises(PolicyError) as info:
        read_policy(text, source="policy.yaml")
    message = str(info.value)
    assert message.startswith("policy.yaml:4: "), message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("written, decimal", NOT_PLAIN.items(), ids=list(NOT_PLAIN))
@pytest.mark.parametrize("field", FIELDS)
def test_a_number_not_written_in_plain_decimal_is_refused_with_its_line(field, written, decimal):
    refused(FIELDS[field].format(written), f"grants[0].{field}", f"{written} is not a plain decimal number",
            f"write {decimal}, or quote it")


@pytest.mark.parametrize("written", BOOLEANS)
@pytest.mark.parametrize("field", FIELDS)
def test_a_yaml_boolean_in_a_numeric_field_is_refused_with_its_line(field, written):
    refused(FIELDS[field].format(written), f"grants[0].{field}",
            f"{written} is read by YAML as the boolean {str(written.lower() in ('yes', 'on')).lower()}",
            "quote it")


@pytest.mark.parametrize("written", ["0123", "12:30", "0x10", "on", "1e3"])
def test_text_fields_name_what_was_written(written):
    """Channels, groups and subjects are text: YAML's number (or boolean) is refused, and the
    message shows what the file says, not what YAML made of it."""
    text = HEAD + "    rtc: {roles: [publisher], uids: [any], max_expire: 60,\n" \
                  f"          channels: [{written}]}}\n"
    if written == "1e3":  # text to PyYAML: the channel "1e3", as it reads
        assert read_policy(text).grants[0].rtc.channels.names == {"1e3"}
        return
    refused(text, "grants[0].rtc.channels", f"expected text; YAML reads {written} as", "quote it")


def caller() -> Identity:
    return Identity("alice", "i", {"sub": "alice"})


def rtc(uid) -> TokenRequest:
    return TokenRequest("rtc", 60, channel="c", uid=uid, role=Role.PUBLISHER)


def test_quoted_values_stay_text_exactly_as_written():
    p = read_policy(HEAD + '    rtc: {channels: [c], roles: [publisher], max_expire: 60,\n'
                           '          uids: ["0123", "12:30", "0x10", "1e3", "yes"]}\n'
                           '    rtm: {users: ["0123", "00123", "0100", "on"], max_expire: 60}\n'
                           '    chat: {users: ["0100", "1_000"], max_expire: 60}\n')
    for uid in ("0123", "12:30", "0x10", "1e3", "yes"):
        assert p.decide(caller(), rtc(uid)).granted, uid
    for uid in (83, 123, 750, 16, 1000):  # not what YAML 1.1 would have made of them unquoted
        assert p.decide(caller(), rtc(uid)).refused == "uid", uid
    for user in ("0123", "00123", "0100", "on"):
        assert p.decide(caller(), TokenRequest("rtm", 60, user=user)).granted, user
    for user in ("83", "64", "123", "True"):
        assert p.decide(caller(), TokenRequest("rtm", 60, user=user)).refused == "user", user
    for user in ("0100", "1_000"):
        assert p.decide(caller(), TokenRequest("chat", 60, user=user)).granted, user
    assert p.decide(caller(), TokenRequest("chat", 60, user="64")).refused == "user"


def test_plain_decimals_mean_what_they_say():
    p = read_policy(HEAD + "    rtc: {channels: [c], roles: [1, 2], max_expire: 600, uids: [0, 123, 4294967295]}\n"
                           "    rtm: {users: [123, -5], max_expire: 86400}\n")
    grant = p.grants[0]
    assert grant.rtc.roles == {Role.PUBLISHER, Role.SUBSCRIBER}
    assert (grant.rtc.max_expire, grant.rtm.max_expire) == (600, 86400)
    for uid in (0, 123, "123", 4294967295):
        assert p.decide(caller(), rtc(uid)).granted, uid
    for user in ("123", "-5"):
        assert p.decide(caller(), TokenRequest("rtm", 60, user=user)).granted, user


def test_the_service_refuses_such_a_file_at_start_and_on_hup(tmp_path):
    """Start-up and HUP both read the file through load_policy: a PolicyError, naming file and line."""
    path = tmp_path / "policy.yaml"
    path.write_text(FIELDS["rtc.uids"].format("0123"))
    with pytest.raises(PolicyError, match=r"policy\.yaml:4: grants\[0\]\.rtc\.uids: 0123 is not a plain decimal"):
        load_policy(path)
