"""The Playground page's server: HTTP on 127.0.0.1 only, one page file, a small JSON API, and
one background thread that trains.

API (JSON bodies and answers; an error is ``{"error": "..."}`` with status 400 or 409):

- ``GET /`` — the page; ``GET /api/options`` — menus, ranges, defaults, labs;
- ``POST /api/session`` ``{"settings": {...}}`` — a new session for this page (it replaces any
  other page's); answers its ``id`` and state;
- ``POST /api/settings`` ``{"id", "settings": {...}}`` — change controls (the model starts
  over from the same seed, as the Playground resets);
- ``POST /api/control`` ``{"id", "action": "play" | "pause" | "step" | "reset"}``;
- ``GET /api/state?id=…&since=EPOCH&have=VERSION`` — epoch, losses since EPOCH, and the
  heatmaps when newer than VERSION;
- ``POST /api/export`` ``{"id", "format": "yaml" | "python"}`` — text for the page to download
  (the server writes no file);
- ``POST /api/close`` ``{"id"}`` — the page went away: training stops.

A session whose page has not asked for anything for :data:`IDLE_SECONDS` is paused, so a closed
tab does not train on.
"""

from __future__ import annotations

import dataclasses
import json
import queue
import secrets
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

from labkit.data import playground_sets
from labkit.errors import LabkitError
from labkit.playground import session as pg

HOST = "127.0.0.1"
DEFAULT_PORT = 8765
IDLE_SECONDS = 10.0  # no request from the page for this long: pause
HEATMAP_EVERY = 0.1  # seconds between heatmap refreshes while playing (≥ 5 per second)
MAX_BODY = 65536
CONTROLS = ("play", "pause", "step", "reset")  # the actions POST /api/control takes
_QUIT = object()  # stop()'s command to the trainer thread; no request can send it


class Trainer:
    """Owns the one :class:`~labkit.playground.session.Session` and trains it in a thread.

    Requests hand it commands through a queue; it publishes what the page shows (losses,
    heatmaps) as a snapshot under a lock, so the model is only ever touched by its thread.
    """

    def __init__(self) -> None:
        self.commands: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.id = ""
        self.playing = False
        self.last_seen = time.monotonic()
        self.snapshot: dict[str, Any] = {"epoch": 0, "history": [], "version": 0}
        self.session: pg.Session | None = None
        self.thread = threading.Thread(target=self._run, name="playground-trainer", daemon=True)
        self.thread.start()

    # -- called from request threads --------------------------------------------------------
    def open(self, chosen: pg.Settings) -> str:
        """Start a session for a new page (replacing any other page's) and wait for it."""
        with self.lock:
            self.id = secrets.token_hex(8)
            self.playing = False
        self.call("reset", chosen)
        return self.id

    def call(self, action: str, argument: Any = None, timeout: float = 120.0) -> None:
        """Queue ``action`` (one of :data:`CONTROLS`, or ``close``) for the trainer thread and
        wait until it is done; any other action is a LabkitError, and nothing is queued."""
        if action not in (*CONTROLS, "close"):
            raise LabkitError(f"action must be one of {', '.join(CONTROLS)}. "
                              f"Received: {action!r}")
        done = threading.Event()
        errors: list[BaseException] = []
        self.commands.put((action, argument, done, errors))
        if not done.wait(timeout):
            raise LabkitError(f"The trainer did not answer {action!r} in {timeout:g} s.")
        if errors:
            raise errors[0]

    def state(self, since: int = 0, have: int = -1) -> dict[str, Any]:
        with self.lock:
            snap = self.snapshot
            out = {"id": self.id, "epoch": snap["epoch"], "playing": self.playing,
                   "stopped": snap.get("stopped", ""), "version": snap["version"],
                   "history": [row for row in snap["history"] if row["epoch"] >= since],
                   "settings": dataclasses.asdict(self.settings)}
            if snap["version"] != have:
                out.update(heatmaps=snap.get("heatmaps"), points=snap.get("points"))
        return out

    @property
    def settings(self) -> pg.Settings:
        """The session's settings (the Playground's defaults before the first page)."""
        session = self.session
        return session.settings if session is not None else pg.Settings()

    def seen(self) -> None:
        self.last_seen = time.monotonic()

    def stop(self) -> None:
        self.commands.put((_QUIT, None, threading.Event(), []))
        self.thread.join(timeout=10)

    # -- the trainer thread -----------------------------------------------------------------
    def _run(self) -> None:
        """Wait for a command while paused; while playing, train an epoch at a time between
        commands, publishing losses after each epoch and heatmaps every HEATMAP_EVERY s."""
        last_heatmap = 0.0
        while True:
            try:
                command = self.commands.get(block=not self._should_train())
            except queue.Empty:
                command = None
            if command is not None:
                action, argument, done, errors = command
                try:
                    if action is _QUIT:
                        return
                    self._do(action, argument)
                    if self.session is not None:
                        self._publish(heatmaps=True)
                        last_heatmap = time.monotonic()
                except Exception as err:  # noqa: BLE001 — raised again in the asking request
                    errors.append(err)
                finally:
                    done.set()
                continue
            if time.monotonic() - self.last_seen > IDLE_SECONDS:  # the page went away
                with self.lock:
                    self.playing = False
                continue
            try:
                self.session.train_epoch()
            except Exception as err:  # noqa: BLE001 — shown on the page, not lost in a thread
                self.session.stopped = f"training failed: {err}"
            now = time.monotonic()
            refresh = now - last_heatmap >= HEATMAP_EVERY
            self._publish(heatmaps=refresh)
            last_heatmap = now if refresh else last_heatmap

    def _should_train(self) -> bool:
        return self.playing and self.session is not None and not self.session.stopped

    def _do(self, action: str, argument: Any) -> None:
        if action == "reset":
            chosen = argument if argument is not None else self.settings
            fresh = pg.Session(chosen)  # may raise: the old session stays
            with self.lock:
                self.session, self.playing = fresh, False
            self._publish(heatmaps=True, points=True)
        elif self.session is None:
            raise LabkitError("No session: open the page first.")
        elif action == "play":
            with self.lock:
                self.playing = not self.session.stopped
        elif action == "pause":
            with self.lock:
                self.playing = False
        elif action == "step":
            with self.lock:
                self.playing = False
            self.session.train_epoch()
        elif action == "close":
            with self.lock:
                self.playing = False
                self.id = ""
        else:  # call() lets no other action through
            raise AssertionError(action)

    def _publish(self, heatmaps: bool, points: bool = False) -> None:
        run = self.session
        update: dict[str, Any] = {"epoch": run.epoch, "history": list(run.history),
                                  "stopped": run.stopped}
        if heatmaps:
            update["heatmaps"] = run.heatmaps()
        if points:
            update["points"] = run.points()
        with self.lock:
            snap = {**self.snapshot, **update}
            if heatmaps:
                snap["version"] = self.snapshot["version"] + 1
            self.snapshot = snap


def options() -> dict[str, Any]:
    """What the page's menus offer, the defaults, and the lab behind each control."""
    defaults = dataclasses.asdict(pg.Settings())
    return {"datasets": pg.DATASETS, "regression": list(playground_sets.REGRESSION),
            "features": pg.FEATURES, "activations": pg.ACTIVATIONS,
            "regularizations": pg.REGULARIZATIONS, "optimizers": pg.OPTIMIZERS,
            "schedules": pg.SCHEDULES, "initializers": pg.INITIALIZERS,
            "learning_rates": pg.LEARNING_RATES,
            "regularization_rates": pg.REGULARIZATION_RATES, "defaults": defaults,
            "labs": pg.LABS, "grid": pg.GRID, "neuron_grid": pg.NEURON_GRID,
            "domain": pg.DOMAIN}


def page() -> bytes:
    return resources.files("labkit.playground").joinpath("page.html").read_bytes()


class Handler(BaseHTTPRequestHandler):
    """The page and the JSON API over one :class:`Trainer` (``self.server.trainer``)."""

    server_version = "labkit-playground"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the CLI prints the URL
        pass

    def do_GET(self) -> None:
        if not self._local_host():
            return
        url = urlparse(self.path)
        if url.path in ("/", "/index.html"):
            self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8")
        elif url.path == "/api/options":
            self._json(options())
        elif url.path == "/api/state":
            query = parse_qs(url.query)
            trainer = self.server.trainer
            if not self._owns(query.get("id", [""])[0]):
                return
            try:
                since = int(query.get("since", ["0"])[0])
                have = int(query.get("have", ["-1"])[0])
            except ValueError:
                self._error("since and have must be integers.")
                return
            trainer.seen()
            self._json(trainer.state(since, have))
        else:
            self._error(f"Not found: {url.path}", HTTPStatus.NOT_FOUND)

    def do_POST(self) -> None:
        if not self._local_host():
            return
        path = urlparse(self.path).path
        body = self._body()
        if body is None:
            return
        trainer = self.server.trainer
        try:
            if path == "/api/session":
                chosen = pg.settings(body.get("settings") or {})
                trainer.open(chosen)
                self._json(trainer.state())
                return
            if path not in ("/api/settings", "/api/control", "/api/export", "/api/close"):
                self._error(f"Not found: {path}", HTTPStatus.NOT_FOUND)
                return
            if not self._owns(body.get("id", "")):
                return
            trainer.seen()
            if path == "/api/settings":
                trainer.call("reset", pg.settings(body.get("settings") or {}, trainer.settings))
            elif path == "/api/control":
                trainer.call(_control(body.get("action")))
            elif path == "/api/close":
                trainer.call("close")
                self._json({"closed": True})
                return
            else:
                self._json(export(trainer, body.get("format")))
                return
            self._json(trainer.state())
        except LabkitError as err:
            self._error(str(err))

    # -- helpers ----------------------------------------------------------------------------
    def _local_host(self) -> bool:
        """Refuse requests addressed to another host name (a web page rebinding its own name
        to 127.0.0.1 to reach this server); the page itself uses 127.0.0.1 or localhost."""
        port = self.server.server_address[1]
        if self.headers.get("Host") in (f"{HOST}:{port}", f"localhost:{port}"):
            return True
        self._error("This server answers pages on 127.0.0.1 only.", HTTPStatus.FORBIDDEN)
        return False

    def _owns(self, session_id: str) -> bool:
        current = self.server.trainer.id
        if not session_id or session_id != current:
            self._error("This page's session has ended: another page took over, or it was "
                        "closed. Reload the page to start again.", HTTPStatus.CONFLICT)
            return False
        return True

    def _body(self) -> dict | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._error(f"The request body must be JSON of at most {MAX_BODY} bytes.")
            return None
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            self._error("The request body is not valid JSON.")
            return None
        if not isinstance(body, dict) or not isinstance(body.get("settings", {}), dict):
            self._error("The request body must be a JSON object; settings an object.")
            return None
        return body

    def _json(self, value: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(value).encode(), "application/json")

    def _error(self, message: str, status: HTTPStatus = HTTPStatus.BAD_REQUEST) -> None:
        self._json({"error": message}, status)

    def _send(self, status: HTTPStatus, payload: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(payload)


def _control(action: Any) -> str:
    """``action`` if the page may send it to /api/control; anything else (``close``, ``quit``,
    a number) is a LabkitError, which the request answers with 400."""
    if action not in CONTROLS:
        raise LabkitError(f"action must be one of {', '.join(CONTROLS)}. Received: {action!r}")
    return action


def export(trainer: Trainer, kind: Any) -> dict[str, str]:
    """The session as a labkit config (YAML) or Python, for the page to download."""
    epochs = trainer.state()["epoch"]
    if kind == "yaml":
        return {"filename": "playground.yaml", "text": pg.config_yaml(trainer.settings, epochs)}
    if kind == "python":
        return {"filename": "playground.py", "text": pg.python_code(trainer.settings, epochs)}
    raise LabkitError(f"format must be yaml or python. Received: {kind!r}")


class Server(ThreadingHTTPServer):
    """The HTTP server with its trainer and page; bound to 127.0.0.1 only."""

    daemon_threads = True

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self.page = page()
        try:
            super().__init__((HOST, port), Handler)
        except OSError as err:
            raise LabkitError(f"Cannot listen on {HOST}:{port}: {err.strerror}. Pick another "
                              f"port with --port (0: any free one).") from None
        self.trainer = Trainer()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def server_close(self) -> None:
        super().server_close()
        if hasattr(self, "trainer"):  # not yet there when binding the port failed
            self.trainer.stop()


def serve(port: int = DEFAULT_PORT, open_browser: bool = False, echo=print) -> None:
    """Serve the page on 127.0.0.1:``port`` until Ctrl-C (or SIGTERM); ``open_browser`` opens
    it in the default browser."""
    import webbrowser

    from labkit.interrupts import stop_on_signals

    server = Server(port)
    echo(f"labkit playground: {server.url}  (Ctrl-C stops it)")
    if open_browser:
        webbrowser.open(server.url)
    try:
        with stop_on_signals():  # SIGTERM stops it as Ctrl-C does
            server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        echo("stopped")
    finally:
        server.server_close()
