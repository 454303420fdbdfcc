"""app.py: the factory's JSON provider keeps the answers' field order, and its encoder built
once answers exactly as Flask's own would, until the provider's settings change."""
from __future__ import annotations

import json
import uuid

from flask.json.provider import DefaultJSONProvider


def test_answers_keep_the_field_order_of_the_servers_they_stand_in_for(client, bearer):
    r = client.get("/rtc/c/publisher/uid/1/", headers=bearer())
    assert list(json.loads(r.data)) == ["rtcToken", "expire"]
    assert r.data.endswith(b"}\n") and b": " not in r.data  # compact, as Flask writes it


def test_the_encoder_built_once_writes_what_flasks_own_writes(app):
    value = {"z": 1, "a": ["é", "\u2028"], "id": uuid.UUID(int=7)}
    flasks = DefaultJSONProvider(app)
    flasks.sort_keys = False
    assert app.json.dumps(value, separators=(",", ":")) == flasks.dumps(value, separators=(",", ":"))
    assert app.json.dumps(value) == flasks.dumps(value)  # other arguments: Flask's path


def test_a_changed_setting_is_honoured(app):
    app.json.ensure_ascii = False
    assert app.json.dumps({"a": "é"}, separators=(",", ":")) == '{"a":"é"}'
    app.json.sort_keys = True
    assert app.json.dumps({"b": 1, "a": 2}, separators=(",", ":")) == '{"a":2,"b":1}'
