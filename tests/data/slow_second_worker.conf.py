"""gunicorn.conf.py as shipped, except that every worker after the first stays in its boot for
a minute, in post_fork: before gunicorn installs the worker's own signal handlers, where gevent's
monkey-patching keeps every worker for a moment (longer on a busy machine, and for every worker
a crash loop or a HUP starts). Held there, the second worker is still booting when a test sends
TERM right after the first worker's answer (tests/test_reload.py)."""
import time
from pathlib import Path

_shipped = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
exec(compile(_shipped.read_text(), str(_shipped), "exec"))

_shipped_post_fork = post_fork  # noqa: F821 (defined by the shipped file)


def post_fork(server, worker):
    _shipped_post_fork(server, worker)
    if worker.age > 1:
        server.log.info("worker %s: booting slowly", worker.pid)
        time.sleep(60)  # past graceful_timeout: a TERM it never handles ends only in the master's SIGKILL
