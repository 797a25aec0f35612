"""Host the MqttRunner in the Odoo server (see runner.py for the why).

``install()`` is called once from the addon's ``post_load`` hook, which Odoo
runs only for server-wide modules.  It patches the server classes; the runner
itself starts when the server starts, never at import time, never with
``--stop-after-init`` and never in HTTP or cron workers.
"""

import logging
import os
import resource
import threading
import time

import psutil

from odoo.service import server
from odoo.tools import config

from .runner import MqttRunner, runner_enabled

_logger = logging.getLogger(__name__)

START_DELAY_S = 1.0
# How long a stopping server waits for the runner's last batch (a flush takes
# well under a second; a database that does not answer makes it give up sooner:
# the batch is then left unacknowledged and the broker sends it again).
STOP_TIMEOUT_S = 20.0
_installed = False
runner_thread = None


class MqttRunnerThread(threading.Thread):
    """The runner as a daemon thread of the threaded server."""

    def __init__(self):
        super().__init__(name="owm-mqtt-runner", daemon=True)
        self.runner = MqttRunner.from_environ_or_config()

    def run(self):
        time.sleep(START_DELAY_S)  # let the server finish starting
        self.runner.run()

    def stop(self):
        self.runner.stop()


class WorkerMqttRunner(server.Worker):
    """The runner as a dedicated prefork worker, respawned by the master."""

    def __init__(self, multi):
        super().__init__(multi)
        self.watchdog_timeout = None  # the runner blocks in process_work by design
        self.runner = None

    def sleep(self):
        pass

    def check_limits(self):
        # The runner is a long-running loop, not a request: no per-request CPU
        # limit (it would kill it after limit_time_cpu s); parent and memory
        # checks stay.
        if self.ppid != os.getppid():
            _logger.info("WorkerMqttRunner (%s): parent changed, exiting", self.pid)
            self.alive = False
        soft = config["limit_memory_soft"]
        if soft and psutil.Process(os.getpid()).memory_info().vms > soft:
            _logger.info(
                "WorkerMqttRunner (%s): memory limit reached, recycling", self.pid
            )
            self.alive = False
        resource.setrlimit(
            resource.RLIMIT_CPU,
            (resource.RLIM_INFINITY, resource.getrlimit(resource.RLIMIT_CPU)[1]),
        )

    def signal_handler(self, sig, frame):
        res = super().signal_handler(sig, frame)
        if self.runner is not None:
            self.runner.stop()
        return res

    def process_work(self):
        self.setproctitle("mqtt runner")
        self.runner = MqttRunner.from_environ_or_config()
        thread = threading.Thread(
            target=self.runner.run, name="owm-mqtt-runner", daemon=True
        )
        time.sleep(START_DELAY_S)
        thread.start()
        while self.alive and thread.is_alive():
            thread.join(1.0)
            self.check_limits()
        self.runner.stop()
        thread.join(15)
        self.alive = False


def _start_thread(kind):
    global runner_thread
    if config["stop_after_init"] or not runner_enabled():
        return
    _logger.info("Starting the MQTT runner thread (%s)", kind)
    runner_thread = MqttRunnerThread()
    runner_thread.start()


def _stop_thread():
    """Stop the runner thread and wait for its last batch.

    Registered with ``CommonServer.on_stop``: ``ThreadedServer.stop`` calls it
    before it closes every connection pool, which that last batch still needs.
    Joined in short steps, as Odoo does, so a second Ctrl-C still forces the
    shutdown.
    """
    global runner_thread
    thread, runner_thread = runner_thread, None
    if thread is None:
        return
    thread.stop()
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.1)
    if thread.is_alive():
        _logger.warning(
            "The MQTT runner did not stop within %.0f s; its unacknowledged "
            "readings come again from the broker",
            STOP_TIMEOUT_S,
        )
    else:
        _logger.info("MQTT runner thread stopped")


def install():
    """Patch the server classes once (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    orig_prefork_init = server.PreforkServer.__init__
    orig_process_spawn = server.PreforkServer.process_spawn
    orig_worker_pop = server.PreforkServer.worker_pop
    orig_threaded_start = server.ThreadedServer.start

    def prefork_init(self, app):
        orig_prefork_init(self, app)
        self.owm_mqtt_runner = {}

    def process_spawn(self):
        orig_process_spawn(self)
        runners = getattr(self, "owm_mqtt_runner", None)
        if runners is not None and not runners and runner_enabled():
            if not config["stop_after_init"]:
                self.worker_spawn(WorkerMqttRunner, runners)

    def worker_pop(self, pid):
        orig_worker_pop(self, pid)
        getattr(self, "owm_mqtt_runner", {}).pop(pid, None)

    def threaded_start(self, *args, **kwargs):
        res = orig_threaded_start(self, *args, **kwargs)
        _start_thread("threaded server")
        return res

    server.PreforkServer.__init__ = prefork_init
    server.PreforkServer.process_spawn = process_spawn
    server.PreforkServer.worker_pop = worker_pop
    server.ThreadedServer.start = threaded_start
    server.CommonServer.on_stop(_stop_thread)
    _logger.info("open_workshop_mqtt: MQTT runner hosting installed")
