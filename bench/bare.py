"""The stack's ceiling for bench/load.py: a bare Flask app, one route, a fixed JSON body.

Served by the same gunicorn command and settings as the service (gunicorn.conf.py), so the
difference between the two is what the service does per request, not how it is served.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/<path:anything>")
def fixed(anything):
    """Any GET: the same small JSON answer."""
    return jsonify(rtcToken="007" + "x" * 120, expire=3600)
