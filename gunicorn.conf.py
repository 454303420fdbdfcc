"""gunicorn settings for the Procfile and `make run`.

Binds 0.0.0.0:$PORT (default 8080); WEB_CONCURRENCY sets the worker count. The app is not
preloaded: each worker builds it from the configuration the master validated last, so
`kill -HUP <master>` re-reads the settings (.env file) and the policy file, validates them,
and starts fresh workers with them while the old ones finish their requests; a broken
configuration is logged and refused, and the running one stays in force.
"""
import atexit
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from config.environment import environment
from config.names import ConfigError
from config.pinned import pinned
from config.settings import memory_storage_warning


def _where_and_how_many() -> tuple[str, int]:
    """The bind address and worker count. gunicorn reads this file again on every HUP, and an
    exception here would stop the master: with a broken .env file, the last configuration the
    master validated decides (on_reload then refuses the new one, naming what is wrong); at
    start-up, the process environment does, and on_starting refuses to start in one line."""
    try:
        env = environment()
    except ConfigError:
        env = pinned() or dict(os.environ)
    port = env.get("PORT") or env.get("SERVER_PORT") or "8080"
    count = env.get("WEB_CONCURRENCY", "")
    return f"0.0.0.0:{port}", int(count) if count.strip().isdigit() else (os.cpu_count() or 1)


bind, workers = _where_and_how_many()
# gevent: one greenlet per connection, so keep-alive connections cost no thread and a client
# that never finishes its request holds only its own greenlet (gunicorn drops it after
# `keepalive` seconds without a complete request head); Redis round trips overlap. One worker
# per core: a worker never waits on Redis (the greenlet does), and more workers than cores only
# get preempted with connections in hand. docs/performance.md has the measurements.
worker_class = "gevent"
worker_connections = 1000  # per worker: open connections, idle keep-alive ones included
timeout = 30
graceful_timeout = 20  # SIGTERM: in-flight requests get this long to finish
keepalive = 5
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), which
# two instances on one machine would fight over; signals (HUP, TERM, TTIN/TTOU) do the same job.
control_socket_disable = True
accesslog = None  # the app writes one JSON line per request itself
errorlog = "-"
loglevel = "info"
# Bounds on what a client may send before the app sees it.
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190


def _validated():
    """Read and validate the whole configuration in the master; raises ConfigError."""
    from api.extension import TokenServer
    from config.pinned import read_configuration

    configuration = read_configuration()
    return configuration, TokenServer.from_configuration(configuration).settings


def on_reload(server):
    """HUP: pin the new configuration for the new workers, or keep the running one if broken."""
    from config.pinned import pin

    try:
        configuration, _ = _validated()
    except ConfigError as e:
        server.log.error("reload refused, the running configuration stays in force: %s", e)
        return
    pin(configuration)
    server.log.info("configuration reloaded")


_METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
_made_metrics_dir: list[str] = []  # the directory this master made, to remove on exit


def _metrics_dir(server) -> None:
    """Give the workers an empty directory for their metrics files (api/metrics.py): the one
    PROMETHEUS_MULTIPROC_DIR names, emptied of a previous run's files, else a new temporary one.
    Set before the app (and prometheus_client) is imported, so every worker counts into it."""
    given = os.environ.get(_METRICS_DIR)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # counters of a previous master: not ours to add up
            stale.unlink()
    else:
        given = tempfile.mkdtemp(prefix="agora-token-server-metrics-")
        _made_metrics_dir.append(given)
        os.environ[_METRICS_DIR] = given
        # however the master ends (a refused configuration, --check-config, a stop); workers
        # inherit the hook, so it acts in the process that made the directory only
        atexit.register(_remove_metrics_dir, os.getpid())
    server.log.info("metrics of all workers in %s", given)


def _remove_metrics_dir(owner: int) -> None:
    if os.getpid() == owner:
        for path in _made_metrics_dir:
            shutil.rmtree(path, ignore_errors=True)


def child_exit(server, worker):
    """A worker's live gauges go with it (its counters stay in the totals)."""
    if os.environ.get(_METRICS_DIR):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def _booting_workers_stop_on_term(server) -> None:
    """A stop signal (TERM, INT, QUIT) that reaches a worker before gunicorn has installed the
    worker's own handlers stops it at once, instead of being lost.

    Between the fork and ``Worker.init_signals`` (which gunicorn calls only after the gevent
    worker has monkey-patched the standard library) a worker runs with the handlers it inherited
    from the master, which only queue a signal for the master's loop, and the worker never runs
    that loop: the signal was dropped, the worker went on to boot and serve, and the master
    waited the whole graceful_timeout for it before killing it.

    So the master blocks these signals across each of its forks (the new worker inherits the
    mask, and a signal sent to it stays pending), and the new worker, first thing, installs a
    handler that exits and unblocks them. Exiting there loses nothing: the worker has accepted no
    connection yet. From ``init_signals`` on, gunicorn's own handlers take over, and TERM lets
    the requests in flight finish. Registered once, here: gunicorn re-reads this file on every
    HUP, but on_starting runs once.
    """
    master = os.getpid()
    stops = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}

    def block_in_master() -> None:
        if os.getpid() == master:
            signal.pthread_sigmask(signal.SIG_BLOCK, stops)

    def unblock_in_master() -> None:
        if os.getpid() == master:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)

    def exit_while_booting(signum, frame) -> None:
        server.log.info("Worker exiting (pid: %s): %s while booting", os.getpid(), signal.Signals(signum).name)
        os._exit(0)  # not SystemExit: at-fork callbacks and library code can swallow it

    def exit_on_stop_in_new_worker() -> None:
        if os.getppid() == master:  # a worker of ours (or USR2's new master, before its exec)
            for stop in stops:
                signal.signal(stop, exit_while_booting)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)  # a pending one is handled here

    os.register_at_fork(before=block_in_master, after_in_parent=unblock_in_master,
                        after_in_child=exit_on_stop_in_new_worker)


def on_starting(server):
    """Validate the whole configuration once in the master, with a one-line error."""
    from config.pinned import pin

    _booting_workers_stop_on_term(server)
    _metrics_dir(server)
    try:
        configuration, settings = _validated()
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        sys.exit(3)
    pin(configuration)
    storage = settings.ratelimit.get("RATELIMIT_STORAGE_URI", "memory://")
    if storage.startswith("memory://") and workers > 1 and settings.web_concurrency is None:
        # With WEB_CONCURRENCY set, each worker says this itself (api/limits.py).
        server.log.warning(memory_storage_warning(workers))
    if settings.demo:
        port = bind.rsplit(":", 1)[1]
        edge = "!" * 78
        server.log.warning(
            "\n%s\n"
            "  DEMO CONFIGURATION (config/demo.env): no APP_ID is set.\n"
            "  Tokens are signed with demo credentials that Agora will REJECT.\n"
            "  Set APP_ID, APP_CERTIFICATE, a JWT key and POLICY_FILE for real use.\n"
            "  Try it:\n"
            "    curl -H \"Authorization: Bearer $(make -s dev-jwt SUB=alice GROUPS=hosts)\" \\\n"
            "      http://127.0.0.1:%s/rtc/live-demo/publisher/userAccount/alice/\n"
            "%s", edge, port, edge,
        )


def post_fork(server, worker):
    """Before a gevent worker patches the standard library: quiet one warning that is noise here.

    on_starting's check imports the app in the master, ssl with it, so gevent warns that ssl
    was imported before patching. What it lists as left unpatched is redis.asyncio (unused) and
    pyjwt's JWKS client, which names ``ssl.SSLContext`` only for a context we never pass: its
    HTTPS fetch goes through urllib, which looks ssl up when it connects, patched by then.
    """
    if worker.cfg.worker_class_str == "gevent":
        import warnings

        warnings.filterwarnings("ignore", message="Monkey-patching ssl after ssl has already been imported")


def post_request(worker, req, environ, resp):
    """Let the worker's other connections go first after each response.

    Without this, a client whose next request is already waiting when its response goes out
    (a keep-alive client on a fast network) is served again at once, and a busy worker can
    leave its other connections waiting for hundreds of milliseconds
    (tests/test_gunicorn.py, test_a_keep_alive_client_with_requests_queued_does_not_starve_the_others).
    """
    if worker.cfg.worker_class_str == "gevent":
        from gevent import idle  # the worker has patched everything by now

        # idle(), not sleep(0): it lets the event loop poll for ready sockets first, where
        # sleep(0) only runs the greenlets already scheduled and, with nothing else waking the
        # loop, let p99 grow to a second under load (docs/performance.md)
        idle()
