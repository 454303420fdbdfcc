"""The policy file refuses, at start-up, a literal channel or user no request could ever match
under Agora's identifier rules; placeholders, wildcards, self and any are left alone."""
from __future__ import annotations

import pytest

from auth.policy_file import PolicyError, load_policy, read_policy

HEAD = "grants:\n  - when: authenticated\n"
RTC = HEAD + "    rtc:\n      roles: [publisher]\n      max_expire: 60\n      uids: {uids}\n" \
             "      channels:\n        - lobby\n        - {channel}\n"  # the channel is on line 9
RTM = HEAD + "    rtm:\n      max_expire: 60\n      users:\n        - self\n        - {user}\n"  # line 7
CHAT = HEAD + "    chat:\n      max_expire: 60\n      users:\n        - self\n        - {user}\n"  # line 7


def refused(text: str, line: int, *words: str) -> None:
    with pytest.raises(PolicyError) as info:
        read_policy(text, source="policy.yaml")
    message = str(info.value)
    assert message.startswith(f"policy.yaml:{line}: "), message
    for w in words:
        assert w in message, message


@pytest.mark.parametrize("channel, words", [
    ('"bad\\nname"', ["channels", r"'\n'", "Agora does not allow"]),
    ('"tab\\there"', [r"'\t'"]),
    ('"nul\\0"', [r"'\x00'"]),
    ('"sep\\u2028"', [r"'\u2028'"]),
    ('"' + "x" * 70 + '"', ["can never match", "63 bytes"]),
    ('"' + "x" * 64 + '"', ["can never match"]),
    ('"' + "é" * 32 + '"', ["'é'"]),
])
def test_literal_channel_no_request_could_match(channel, words):
    refused(RTC.format(uids="[any]", channel=channel), 9, *words)


@pytest.mark.parametrize("user, words", [
    ('"0"', ["grants[0].rtm.users", "RTM user id '0' is not an RTM user", "uid 0 means any uid",
             "no request could match it"]),
    ("0", ["uid 0 means any uid"]),  # an unquoted 0 is the user "0" too
    ('" x"', ["starts with a space"]),
    ("'null'", ["'null'"]),
    ('"' + "u" * 64 + '"', ["RTM user id is 64 bytes; Agora allows fewer than 64"]),
    ('"' + "u" * 300 + '"', ["RTM user id is 300 bytes"]),
    ('"bob\\n"', ["RTM user id may hold only", r"got '\n'"]),
    ('"bob\\r"', [r"got '\r'"]),
    ('"caf\\u00e9"', ["got 'é'"]),
])
def test_literal_rtm_user_no_request_could_match(user, words):
    refused(RTM.format(user=user), 7, *words)


@pytest.mark.parametrize("user, words", [
    ('"Bob!"', ["grants[0].chat.users", "Chat user id may hold only lowercase a-z, 0-9", "got '!'"]),
    ('"Bob"', ["uppercase", "use 'bob'"]),
    ('"bob smith"', ["got ' '"]),
    ('"bob\\n"', [r"got '\n'"]),
    ('"' + "u" * 65 + '"', ["65 characters", "at most 64"]),
])
def test_literal_chat_user_no_request_could_match(user, words):
    refused(CHAT.format(user=user), 7, *words)


@pytest.mark.parametrize("uid, words", [
    ('"al\\nice"', ["uid may hold only", r"got '\n'"]),
    ('"' + "a" * 256 + '"', ["uid is 256 bytes", "at most 255"]),
])
def test_literal_rtc_account_no_request_could_match(uid, words):
    refused(RTC.format(uids=f"[self, {uid}]", channel="ok"), 6, *words)


def test_literals_within_the_rules_and_patterns_load():
    read_policy(RTC.format(uids='[self, any, 0, 42, "1000-1999", "Alice Smith", "' + "a" * 255 + '"]',
                                channel='"live-*"'))
    read_policy(RTC.format(uids="[any]", channel='"' + "x" * 63 + '"'))
    read_policy(RTC.format(uids="[any]", channel='"room-{sub}"'))  # a placeholder is not a literal
    read_policy(RTC.format(uids="[any]", channel='"stage-??"'))
    for user in ("bot-1", '"007"', "42", '"' + "u" * 63 + '"', '"a b"', "Self", "ANY", '"null-ish"'):
        read_policy(RTM.format(user=user))
    for user in ("support", '"first.last_1"', '"' + "u" * 64 + '"', "any"):
        read_policy(CHAT.format(user=user))


def test_the_loader_names_the_file_and_line(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(RTM.format(user='"0"'))
    with pytest.raises(PolicyError, match=r"policy\.yaml:7: grants\[0\]\.rtm\.users: .*uid 0 means any uid"):
        load_policy(path)
