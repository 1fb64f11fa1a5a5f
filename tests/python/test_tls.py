"""TLS listeners (issue 17, items 1 and 2): Kafka's listener syntax, SSL round trips with
librdkafka and kafka-python, Metadata telling each client the addresses of the listener it
came in on, mutual TLS (required and requested), a plaintext client on the TLS port closed at
once, and a certificate rotated without a restart."""

import os
import shutil
import socket
import struct
import subprocess
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from broker import BIN, Broker
from certs import Ca
from clients import consume_all, metric, produce_all, wait_for
from cluster import Cluster


def tls_env(tmp_path, client_auth="none", ca=None, extra_env=None):
    """Settings for a PLAINTEXT and an SSL listener (both on port 0), the certificate from a
    fresh CA; returns (env, ca)."""
    ca = ca or Ca(tmp_path / "ca")
    crt, key = ca.issue("server", "localhost", server=True)
    env = {
        "RAFTSTREAM_LISTENERS": "PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:0",
        "RAFTSTREAM_SSL_CERTIFICATE_LOCATION": str(crt),
        "RAFTSTREAM_SSL_KEY_LOCATION": str(key),
        "RAFTSTREAM_SSL_CLIENT_AUTH": client_auth,
        "RAFTSTREAM_SSL_CA_LOCATION": str(ca.pem),
        "RAFTSTREAM_SSL_RELOAD_INTERVAL_MS": "200",
        **(extra_env or {}),
    }
    return env, ca


def tls_broker(tmp_path, client_auth="none", ca=None, extra_env=None):
    """A broker with a PLAINTEXT and an SSL listener; returns (broker, ca)."""
    env, ca = tls_env(tmp_path, client_auth, ca, extra_env)
    return Broker(tmp_path / "data", env=env).start(), ca


def ssl_conf(ca, cert=None):
    conf = {"security.protocol": "SSL", "ssl.ca.location": str(ca.pem)}
    if cert:
        conf.update({"ssl.certificate.location": str(cert[0]), "ssl.key.location": str(cert[1])})
    return conf


def test_ssl_round_trips_and_metadata_tells_each_listener_its_own_addresses(tmp_path):
    b, ca = tls_broker(tmp_path)
    ssl_port, plain_port = b.listener_ports["SSL"], b.listener_ports["PLAINTEXT"]
    assert ssl_port != plain_port
    ssl_bootstrap = f"127.0.0.1:{ssl_port}"
    conf = ssl_conf(ca)
    md = AdminClient({"bootstrap.servers": ssl_bootstrap, **conf}).list_topics(timeout=10)
    assert [(n.host, n.port) for n in md.brokers.values()] == [("127.0.0.1", ssl_port)]
    md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
    assert [(n.host, n.port) for n in md.brokers.values()] == [("127.0.0.1", plain_port)]

    records = [(None, b"tls-%d" % i, None, None) for i in range(20)]
    reports = produce_all(ssl_bootstrap, "secret", records, acks="all", **conf)
    assert all(err is None for err, *_ in reports), reports[:3]
    read = consume_all(ssl_bootstrap, "secret", 0, 20, **conf)
    assert [m.value() for m in read] == [v for _, v, _, _ in records]

    # kafka-python over SSL, reading what librdkafka wrote and adding its own.
    kp = KafkaProducer(bootstrap_servers=ssl_bootstrap, security_protocol="SSL", ssl_cafile=str(ca.pem),
                       ssl_check_hostname=True, acks="all")
    kp.send("secret", b"from-kafka-python").get(timeout=30)
    kp.close()
    kc = KafkaConsumer("secret", bootstrap_servers=ssl_bootstrap, security_protocol="SSL",
                       ssl_cafile=str(ca.pem), auto_offset_reset="earliest", consumer_timeout_ms=10000)
    got = []
    for m in kc:
        got.append(m.value)
        if len(got) == 21:
            break
    kc.close()
    assert got == [v for _, v, _, _ in records] + [b"from-kafka-python"]
    b.kill()


def test_a_cluster_tells_ssl_clients_every_nodes_ssl_address(tmp_path):
    env, ca = tls_env(tmp_path)
    c = Cluster(tmp_path, env=env).start()
    ssl_ports = {b.node_id: b.listener_ports["SSL"] for b in c.nodes}
    plain_ports = {b.node_id: b.port for b in c.nodes}
    for b in c.nodes:
        md = AdminClient({"bootstrap.servers": f"127.0.0.1:{ssl_ports[b.node_id]}", **ssl_conf(ca)}).list_topics(timeout=10)
        assert {n.id: n.port for n in md.brokers.values()} == ssl_ports
        md = AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10)
        assert {n.id: n.port for n in md.brokers.values()} == plain_ports
    ssl_bootstrap = ",".join(f"127.0.0.1:{p}" for p in ssl_ports.values())
    admin = AdminClient({"bootstrap.servers": ssl_bootstrap, **ssl_conf(ca)})
    admin.create_topics([NewTopic("replicated", num_partitions=1, replication_factor=3)])["replicated"].result(30)
    records = [(None, b"r%d" % i, None, None) for i in range(10)]
    reports = produce_all(ssl_bootstrap, "replicated", records, acks="all", **ssl_conf(ca))
    assert all(err is None for err, *_ in reports), reports[:3]
    assert [m.value() for m in consume_all(ssl_bootstrap, "replicated", 0, 10, **ssl_conf(ca))] == [
        v for _, v, _, _ in records]
    c.kill()


def test_a_plaintext_client_on_the_tls_port_is_closed_at_once(tmp_path):
    b, _ = tls_broker(tmp_path)
    # A Kafka ApiVersions v0 request, as a plaintext client would send it first.
    body = struct.pack(">hhi", 18, 0, 1) + struct.pack(">h", 4) + b"test"
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", b.listener_ports["SSL"]), timeout=5) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        try:
            answer = s.recv(4096)
        except ConnectionResetError:
            answer = b""
    elapsed = time.monotonic() - started
    # No Kafka response: at most a TLS alert record (content type 21), then the close.
    assert answer == b"" or answer[0] == 21, answer[:16]
    assert elapsed < 2, f"closed after {elapsed:.1f} s"
    wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_tls_handshake_failures_total", how="failed") >= 1,
             "the failed handshake counted")
    # The broker still serves everyone else.
    assert AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=10).brokers
    b.kill()


def test_required_client_certificates(tmp_path):
    b, ca = tls_broker(tmp_path, client_auth="required")
    ssl_bootstrap = f"127.0.0.1:{b.listener_ports['SSL']}"
    alice = ca.issue("alice", "alice", server=False)
    reports = produce_all(ssl_bootstrap, "mtls", [(None, b"signed", None, None)], **ssl_conf(ca, alice))
    assert reports[0][0] is None
    # No certificate, or one from another CA: refused in the handshake, nothing written.
    stranger = Ca(tmp_path / "other", "another CA").issue("mallory", "mallory", server=False)
    for cert in (None, stranger):
        p = Producer({"bootstrap.servers": ssl_bootstrap, "message.timeout.ms": 3000, **ssl_conf(ca, cert)})
        failed = []
        p.produce("mtls", value=b"unsigned", on_delivery=lambda err, m: failed.append(err))
        p.flush(10)
        assert failed and failed[0] is not None, failed
    assert [m.value() for m in consume_all(ssl_bootstrap, "mtls", 0, 1, **ssl_conf(ca, alice))] == [b"signed"]
    wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_tls_handshake_failures_total") >= 2,
             "both refused handshakes counted")
    b.kill()


def test_requested_client_certificates_are_optional(tmp_path):
    b, ca = tls_broker(tmp_path, client_auth="requested")
    ssl_bootstrap = f"127.0.0.1:{b.listener_ports['SSL']}"
    alice = ca.issue("alice", "alice", server=False)
    for i, cert in enumerate((None, alice)):
        reports = produce_all(ssl_bootstrap, "optional", [(None, b"v%d" % i, None, None)], **ssl_conf(ca, cert))
        assert reports[0][0] is None, reports
    b.kill()


def test_a_rotated_certificate_is_used_without_a_restart(tmp_path):
    b, old_ca = tls_broker(tmp_path)
    ssl_bootstrap = f"127.0.0.1:{b.listener_ports['SSL']}"
    assert produce_all(ssl_bootstrap, "rotate", [(None, b"before", None, None)], **ssl_conf(old_ca))[0][0] is None
    new_ca = Ca(tmp_path / "new-ca", "rotated CA")
    crt, key = new_ca.issue("server-new", "localhost", server=True)
    # Replace the files the broker reads (key first: a certificate without its key would not load).
    shutil.copy(key, tmp_path / "ca" / "server.key.tmp")
    shutil.copy(crt, tmp_path / "ca" / "server.crt.tmp")
    old = {name: os.stat(tmp_path / "ca" / name) for name in ("server.key", "server.crt")}
    (tmp_path / "ca" / "server.key.tmp").rename(tmp_path / "ca" / "server.key")
    (tmp_path / "ca" / "server.crt.tmp").rename(tmp_path / "ca" / "server.crt")
    # The same modification times as before: only the content tells the change.
    for name, st in old.items():
        os.utime(tmp_path / "ca" / name, ns=(st.st_atime_ns, st.st_mtime_ns))

    def trusts(ca):
        try:
            AdminClient({"bootstrap.servers": ssl_bootstrap, **ssl_conf(ca)}).list_topics(timeout=3)
            return True
        except KafkaException:
            return False

    wait_for(lambda: trusts(new_ca), "the rotated certificate in use", 30)
    assert not trusts(old_ca), "the old certificate is no longer presented"
    assert b.proc.poll() is None
    b.kill()


def test_bad_listener_settings_refuse_to_start(tmp_path):
    cases = [
        {"RAFTSTREAM_LISTENERS": "SSL://127.0.0.1:0"},  # no certificate
        {"RAFTSTREAM_LISTENERS": "SASL_SSL://127.0.0.1:0"},  # TLS without a certificate
        {"RAFTSTREAM_LISTENERS": "SASL_PLAINTEXT://127.0.0.1:0", "RAFTSTREAM_SASL_ENABLED_MECHANISMS": "GSSAPI"},
        {"RAFTSTREAM_LISTENERS": "PLAINTEXT://127.0.0.1:0,PLAINTEXT://127.0.0.1:0"},
        {"RAFTSTREAM_LISTENERS": "FOO://127.0.0.1:0"},
    ]
    for i, env in enumerate(cases):
        import os
        p = subprocess.run([BIN, "--data-dir", str(tmp_path / f"d{i}"), "--http-listen", ""],
                           env=dict(os.environ, **env), capture_output=True, text=True, timeout=30)
        assert p.returncode != 0, (env, p.stderr[-500:])
        assert any(w in p.stderr.lower() for w in ("listener", "ssl", "sasl")), p.stderr[-500:]
