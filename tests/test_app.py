"""app.py: ``create_app`` takes a plain configuration; Flask's own keys come from a test's,
never from the environment."""
from __future__ import annotations

import json

from app import create_app
from config.pinned import read_configuration


def test_answers_keep_the_field_order_of_the_servers_they_stand_in_for(client, bearer):
    r = client.get("/rtc/c/publisher/uid/1/", headers=bearer())
    assert list(json.loads(r.data)) == ["rtcToken", "expire"]
    assert r.data.endswith(b"}\n") and b": " not in r.data  # compact, as Flask writes it


def test_flasks_own_keys_come_from_a_tests_configuration(env):
    app = create_app({**env, "TESTING": True})
    assert app.testing is True and "TESTING" not in read_configuration(env)


def test_a_variable_named_like_a_flask_key_in_the_environment_changes_nothing(env):
    app = create_app(read_configuration({**env, "DEBUG": "false", "TESTING": "0", "SERVER_NAME": "x"}))
    assert (app.debug, app.testing, app.config["SERVER_NAME"]) == (False, False, None)
    r = app.test_client().get("/ping")
    assert r.status_code == 200 and r.data == b'{"message":"pong"}\n'  # not debug's indented JSON
