"""Starts a real raftstream process for a test: a fresh data dir, port 0 (or a given port on
restart), and a check that the node we reach is the one we started (node id and cluster id)."""

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

BIN = os.environ.get("RAFTSTREAM_BIN", str(Path(__file__).resolve().parents[2] / "target" / "debug" / "raftstream"))
LISTEN_RE = re.compile(r"raftstream listening on 127\.0\.0\.1:(\d+) \(node (\d+) of cluster (\w+)\)")
HTTP_RE = re.compile(r"http \(health\) listening on 127\.0\.0\.1:(\d+)")
LISTENER_RE = re.compile(r"(PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL) listener on 127\.0\.0\.1:(\d+)")


# Every process any test launched: a failed test leaves none behind to load the machine.
LAUNCHED = []


def kill_launched():
    """SIGKILLs every launched process still running."""
    while LAUNCHED:
        proc = LAUNCHED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


class Broker:
    """One raftstream process over one data dir; can be killed and restarted on the same dir."""

    def __init__(self, data_dir, node_id=1, extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.env = dict(env or {})
        self.node_id = node_id
        self.extra_args = list(extra_args)
        self.port = 0
        self.http_port = None
        self.proc = None
        self.lines = []
        # Port of each Kafka listener by name (PLAINTEXT, SSL, ...).
        self.listener_ports = {}
        self.cluster_id = None
        self._listening = threading.Event()

    def start(self, timeout=30):
        self.launch()
        return self.await_started(timeout)

    def launch(self):
        """Starts the process without waiting (cluster nodes wait for each other)."""
        self._listening.clear()
        args = [BIN, "--data-dir", str(self.data_dir), "--listen", f"127.0.0.1:{self.port}",
                "--http-listen", "127.0.0.1:0", "--node-id", str(self.node_id)] + self.extra_args
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info,openraft=warn"), **self.env)
        # Kafka's 50 offsets partitions are more than tests need on a 2-core machine.
        env.setdefault("RAFTSTREAM_OFFSETS_TOPIC_NUM_PARTITIONS", "3")
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        LAUNCHED.append(self.proc)
        threading.Thread(target=self._read_log, args=(self.proc,), daemon=True).start()
        return self

    def await_started(self, timeout=30, ready=True):
        """Waits for the Kafka listener, checks identity, waits for readiness (unless not
        `ready`: a node whose partitions cannot have a leader yet)."""
        if not self._listening.wait(timeout):
            self.kill()
            raise RuntimeError("broker did not start:\n" + "\n".join(self.lines[-30:]))
        self._check_identity()
        if ready:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=30):
        """Waits until /health/ready says every partition has recovered and has a leader."""
        deadline = time.monotonic() + timeout
        while self.http_get("/health/ready")[0] != 200:
            assert time.monotonic() < deadline, "broker never became ready:\n" + "\n".join(self.lines[-20:])
            time.sleep(0.02)

    def _read_log(self, proc):
        for line in proc.stderr:
            self.lines.append(line.rstrip("\n"))
            h = HTTP_RE.search(line)
            if h:
                self.http_port = int(h.group(1))
            listener = LISTENER_RE.search(line)
            if listener:
                self.listener_ports[listener.group(1)] = int(listener.group(2))
            m = LISTEN_RE.search(line)
            if m:
                self.port = int(m.group(1))
                assert int(m.group(2)) == self.node_id
                self.cluster_id = m.group(3)
                self._listening.set()

    def _check_identity(self):
        """The node answering Metadata must be the one this object started."""
        md = AdminClient({"bootstrap.servers": self.bootstrap}).list_topics(timeout=10)
        assert md.cluster_id == self.cluster_id, (md.cluster_id, self.cluster_id)
        # The node registered at the port we dialled is the one we started.
        assert md.brokers[self.node_id].port == self.port, md.brokers
        node = json.loads((self.data_dir / "node.json").read_text())
        assert node["cluster_id"] == self.cluster_id

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                return self.proc.wait(60)
        return self.proc.returncode if self.proc else None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def http_get(self, path):
        """(status, body) of GET `path` on the broker's HTTP port."""
        import urllib.error
        import urllib.request
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def log_text(self):
        return "\n".join(self.lines)
