"""SASL (issue 17, items 3-4): PLAIN and SCRAM-SHA-256/512 on SASL_PLAINTEXT and SASL_SSL with
librdkafka and kafka-python, credentials from `sasl.bootstrap.users` kept in the replicated
metadata (created on the cluster's first start only, surviving restarts), wrong passwords and
unknown users refused alike and quickly, and nothing but ApiVersions and the SASL exchange
served before authentication."""

import socket
import struct
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer, KafkaProducer

from broker import Broker
from certs import Ca
from clients import consume_all, metric, produce_all, wait_for

USERS = "alice:alice-secret,bob:b0b-pass"


def sasl_broker(tmp_path, users=USERS, data="data"):
    ca = Ca(tmp_path / "ca")
    crt, key = ca.issue("server", "localhost", server=True)
    env = {
        "RAFTSTREAM_LISTENERS": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0,SASL_SSL://127.0.0.1:0",
        "RAFTSTREAM_SASL_ENABLED_MECHANISMS": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "RAFTSTREAM_SASL_BOOTSTRAP_USERS": users,
        "RAFTSTREAM_SUPER_USERS": "User:alice",
        "RAFTSTREAM_SSL_CERTIFICATE_LOCATION": str(crt),
        "RAFTSTREAM_SSL_KEY_LOCATION": str(key),
    }
    return Broker(tmp_path / data, env=env).start(), ca


def sasl_conf(mechanism, user="alice", password="alice-secret", ca=None):
    conf = {"security.protocol": "SASL_SSL" if ca else "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}
    if ca:
        conf["ssl.ca.location"] = str(ca.pem)
    return conf


def at(b, listener):
    return f"127.0.0.1:{b.listener_ports[listener]}"


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_librdkafka_round_trip_over_sasl_plaintext(tmp_path, mechanism):
    b, _ = sasl_broker(tmp_path)
    bootstrap, conf = at(b, "SASL_PLAINTEXT"), sasl_conf(mechanism)
    md = AdminClient({"bootstrap.servers": bootstrap, **conf}).list_topics(timeout=10)
    assert [n.port for n in md.brokers.values()] == [b.listener_ports["SASL_PLAINTEXT"]]
    records = [(None, b"m%d" % i, None, None) for i in range(10)]
    reports = produce_all(bootstrap, "sasl", records, acks="all", **conf)
    assert all(err is None for err, *_ in reports), reports[:3]
    assert [m.value() for m in consume_all(bootstrap, "sasl", 0, 10, **sasl_conf(mechanism, "bob", "b0b-pass"))] == [
        v for _, v, _, _ in records]
    wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_sasl_authentications_total", result="ok") >= 2,
             "the authentications counted")
    b.kill()


def test_scram_over_sasl_ssl_and_kafka_python(tmp_path):
    b, ca = sasl_broker(tmp_path)
    ssl_bootstrap = at(b, "SASL_SSL")
    reports = produce_all(ssl_bootstrap, "both", [(None, b"rdkafka", None, None)], acks="all",
                          **sasl_conf("SCRAM-SHA-512", ca=ca))
    assert reports[0][0] is None, reports
    kp = KafkaProducer(bootstrap_servers=at(b, "SASL_PLAINTEXT"), security_protocol="SASL_PLAINTEXT",
                       sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob", sasl_plain_password="b0b-pass",
                       acks="all")
    kp.send("both", b"kafka-python").get(timeout=30)
    kp.close()
    kc = KafkaConsumer("both", bootstrap_servers=ssl_bootstrap, security_protocol="SASL_SSL", ssl_cafile=str(ca.pem),
                       sasl_mechanism="PLAIN", sasl_plain_username="alice", sasl_plain_password="alice-secret",
                       auto_offset_reset="earliest", consumer_timeout_ms=10000)
    got = []
    for m in kc:
        got.append(m.value)
        if len(got) == 2:
            break
    kc.close()
    assert got == [b"rdkafka", b"kafka-python"]
    b.kill()


def refused(bootstrap, conf):
    """Whether a producer with `conf` fails to deliver, and how long it took to learn it."""
    errors = []
    started = time.monotonic()
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 5000, **conf,
                  "error_cb": lambda e: errors.append(e)})
    p.produce("never", value=b"x")
    deadline = time.monotonic() + 10
    while not errors and time.monotonic() < deadline:
        p.poll(0.05)
    return errors, time.monotonic() - started


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_wrong_passwords_and_unknown_users_are_refused_alike_and_fast(tmp_path, mechanism):
    b, _ = sasl_broker(tmp_path)
    bootstrap = at(b, "SASL_PLAINTEXT")
    messages = []
    for user, password in (("alice", "wrong"), ("mallory", "alice-secret")):
        errors, took = refused(bootstrap, sasl_conf(mechanism, user, password))
        assert errors, f"{user} was not refused"
        assert took < 3, f"refusing {user} took {took:.1f} s"
        messages.append(errors[0].str().split(": ", 1)[-1])
    assert "Authentication failed" in messages[0], messages
    wait_for(lambda: metric(b.http_get("/metrics")[1], "raftstream_sasl_authentications_total", result="failed") >= 2,
             "the failures counted")
    assert b.proc.poll() is None
    b.kill()


def frame(api_key, version, correlation_id, body=b""):
    payload = struct.pack(">hhih", api_key, version, correlation_id, 4) + b"test" + body
    return struct.pack(">i", len(payload)) + payload


def read_frame(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (size,) = struct.unpack(">i", head)
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def test_only_api_versions_and_the_exchange_come_before_authentication(tmp_path):
    b, _ = sasl_broker(tmp_path)
    with socket.create_connection(("127.0.0.1", b.listener_ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(frame(18, 0, 7))  # ApiVersions v0: answered
        answer = read_frame(s)
        assert answer is not None and struct.unpack(">i", answer[:4])[0] == 7
        s.sendall(frame(3, 1, 8, struct.pack(">i", 0)))  # Metadata v1 for no topic: closes
        assert read_frame(s) is None, "the connection closed without an answer"
    # On the PLAINTEXT listener a SaslHandshake is out of place: ILLEGAL_SASL_STATE (34).
    with socket.create_connection(("127.0.0.1", b.listener_ports["PLAINTEXT"]), timeout=10) as s:
        s.sendall(frame(17, 1, 9, struct.pack(">h", 5) + b"PLAIN"))
        answer = read_frame(s)
        assert struct.unpack(">ih", answer[:6]) == (9, 34), answer
    b.kill()


def test_raw_tokens_after_handshake_v0(tmp_path):
    """SaslHandshake v0: the tokens follow as raw frames (older clients)."""
    b, _ = sasl_broker(tmp_path)
    with socket.create_connection(("127.0.0.1", b.listener_ports["SASL_PLAINTEXT"]), timeout=10) as s:
        s.sendall(frame(17, 0, 1, struct.pack(">h", 5) + b"PLAIN"))
        answer = read_frame(s)
        assert struct.unpack(">ih", answer[:6]) == (1, 0), answer
        token = b"\0alice\0alice-secret"
        s.sendall(struct.pack(">i", len(token)) + token)
        assert read_frame(s) == b"", "an empty last token: authenticated"
        s.sendall(frame(18, 0, 2))
        assert struct.unpack(">i", read_frame(s)[:4])[0] == 2, "served once authenticated"
    b.kill()


def test_bootstrap_users_only_on_the_clusters_first_start(tmp_path):
    b, _ = sasl_broker(tmp_path)
    b.kill()
    # A restart with other bootstrap users changes nothing: alice stays, carol never exists.
    again, _ = sasl_broker(tmp_path, users="carol:carol-pass")
    bootstrap = at(again, "SASL_PLAINTEXT")
    reports = produce_all(bootstrap, "kept", [(None, b"x", None, None)], **sasl_conf("SCRAM-SHA-256"))
    assert reports[0][0] is None, reports
    errors, _ = refused(bootstrap, sasl_conf("SCRAM-SHA-256", "carol", "carol-pass"))
    assert errors, "carol was created on a restart"
    again.kill()


def admin_as(b, user="alice", password="alice-secret"):
    from confluent_kafka.admin import AdminClient as Admin
    return Admin({"bootstrap.servers": at(b, "SASL_PLAINTEXT"), **sasl_conf("SCRAM-SHA-256", user, password)})


def plain_authenticated_socket(port, user, password):
    """A raw connection authenticated with SaslHandshake v1 + SaslAuthenticate v0 (PLAIN)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
    assert struct.unpack(">ih", read_frame(s)[:6]) == (1, 0)
    token = b"\0" + user.encode() + b"\0" + password.encode()
    s.sendall(frame(36, 0, 2, struct.pack(">i", len(token)) + token))
    assert struct.unpack(">ih", read_frame(s)[:6]) == (2, 0), "authenticated"
    return s


def test_users_managed_through_the_admin_api(tmp_path):
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    b, _ = sasl_broker(tmp_path)
    admin = admin_as(b)
    sha256 = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 8192)
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion("carol", sha256, b"carol-pass")])["carol"].result(30)
    described = admin.describe_user_scram_credentials(["carol", "alice"])
    carol = described["carol"].result(10)
    assert [(i.mechanism, i.iterations) for i in carol.scram_credential_infos] == [(ScramMechanism.SCRAM_SHA_256, 8192)]
    assert {i.mechanism for i in described["alice"].result(10).scram_credential_infos} == {
        ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512}
    with pytest.raises(Exception, match="RESOURCE_NOT_FOUND|does not exist"):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(10)
    weak = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 1000)
    with pytest.raises(Exception, match="UNACCEPTABLE_CREDENTIAL|iterations"):
        admin.alter_user_scram_credentials([UserScramCredentialUpsertion("dave", weak, b"x")])["dave"].result(30)
    # carol logs in (SCRAM and PLAIN against the same credential); survives a restart.
    bootstrap = at(b, "SASL_PLAINTEXT")
    assert produce_all(bootstrap, "c", [(None, b"1", None, None)], **sasl_conf("SCRAM-SHA-256", "carol", "carol-pass"))[0][0] is None
    b.kill()
    b.start()
    bootstrap = at(b, "SASL_PLAINTEXT")
    assert produce_all(bootstrap, "c", [(None, b"2", None, None)], **sasl_conf("PLAIN", "carol", "carol-pass"))[0][0] is None
    # Deleting carol closes her open connection within a second.
    s = plain_authenticated_socket(b.listener_ports["SASL_PLAINTEXT"], "carol", "carol-pass")
    admin = admin_as(b)
    admin.alter_user_scram_credentials([UserScramCredentialDeletion("carol", ScramMechanism.SCRAM_SHA_256)])["carol"].result(30)
    deleted_at = time.monotonic()
    s.settimeout(5)
    assert read_frame(s) is None, "the connection closed"
    assert time.monotonic() - deleted_at < 1.5
    s.close()
    errors, _ = refused(bootstrap, sasl_conf("SCRAM-SHA-256", "carol", "carol-pass"))
    assert errors, "a deleted user is refused"
    b.kill()


def test_credentials_are_the_same_on_every_node(tmp_path):
    from cluster import Cluster
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    env = {
        "RAFTSTREAM_LISTENERS": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "RAFTSTREAM_SASL_BOOTSTRAP_USERS": USERS,
        "RAFTSTREAM_SUPER_USERS": "User:alice",
    }
    c = Cluster(tmp_path, env=env).start()
    admin = admin_as(c.nodes[0])
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096)
    admin.alter_user_scram_credentials([UserScramCredentialUpsertion("erin", info, b"erin-pass")])["erin"].result(30)
    for b in c.nodes:
        conf = sasl_conf("SCRAM-SHA-512", "erin", "erin-pass")

        def logs_in():
            try:
                AdminClient({"bootstrap.servers": at(b, "SASL_PLAINTEXT"), **conf}).list_topics(timeout=3)
                return True
            except Exception:
                return False
        wait_for(logs_in, f"erin logging in on node {b.node_id}", 20)
        AdminClient({"bootstrap.servers": at(b, "SASL_PLAINTEXT"), **sasl_conf("SCRAM-SHA-256")}).list_topics(timeout=10)
    c.kill()


def test_repeated_failures_from_one_address_are_answered_ever_later(tmp_path):
    b, _ = sasl_broker(tmp_path)
    took = []
    for _ in range(4):
        with socket.create_connection(("127.0.0.1", b.listener_ports["SASL_PLAINTEXT"]), timeout=10) as s:
            s.sendall(frame(17, 1, 1, struct.pack(">h", 5) + b"PLAIN"))
            read_frame(s)
            token = b"\0alice\0guess"
            started = time.monotonic()
            s.sendall(frame(36, 0, 2, struct.pack(">i", len(token)) + token))
            answer = read_frame(s)
            took.append(time.monotonic() - started)
            assert struct.unpack(">ih", answer[:6]) == (2, 58), answer  # SASL_AUTHENTICATION_FAILED
            assert read_frame(s) is None, "closed after the failure"
    # 100, 200, 400, 800 ms: each failure from this address waits about twice the one before.
    assert took[0] >= 0.09 and took[3] >= 0.7, took
    assert all(t < 5.5 for t in took), took
    # The right password still gets in, and resets the count.
    s = plain_authenticated_socket(b.listener_ports["SASL_PLAINTEXT"], "alice", "alice-secret")
    s.close()
    b.kill()


def test_only_super_users_manage_users_and_secrets_are_not_described(tmp_path):
    from confluent_kafka.admin import (AdminClient as Admin, ConfigResource, ResourceType, ScramCredentialInfo,
                                       ScramMechanism, UserScramCredentialUpsertion)
    b, _ = sasl_broker(tmp_path)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096)
    for admin in (admin_as(b, "bob", "b0b-pass"), Admin({"bootstrap.servers": b.bootstrap})):
        with pytest.raises(Exception, match="CLUSTER_AUTHORIZATION_FAILED|[Aa]uthoriz"):
            admin.alter_user_scram_credentials([UserScramCredentialUpsertion("alice", info, b"taken")])["alice"].result(30)
    # DescribeUserScramCredentials v0, raw (librdkafka 2.12 crashes on an error answer to it):
    # as bob over SASL and anonymously over PLAINTEXT, CLUSTER_AUTHORIZATION_FAILED (31).
    bob = plain_authenticated_socket(b.listener_ports["SASL_PLAINTEXT"], "bob", "b0b-pass")
    anonymous = socket.create_connection(("127.0.0.1", b.port), timeout=10)
    for s in (bob, anonymous):
        body = b"\x02" + b"\x06alice" + b"\x00" + b"\x00"  # users: [alice]; tagged fields
        header = struct.pack(">hhih", 50, 0, 5, 4) + b"test" + b"\x00"
        s.sendall(struct.pack(">i", len(header + body)) + header + body)
        answer = read_frame(s)
        correlation_id, _tags, _throttle, error = struct.unpack(">ibih", answer[:11])
        assert (correlation_id, error) == (5, 31), answer
        s.close()
    # alice's password is unchanged.
    assert produce_all(at(b, "SASL_PLAINTEXT"), "x", [(None, b"1", None, None)], **sasl_conf("PLAIN"))[0][0] is None
    # DescribeConfigs never shows the bootstrap passwords.
    admin = Admin({"bootstrap.servers": b.bootstrap})
    resource = ConfigResource(ResourceType.BROKER, "1")
    entries = admin.describe_configs([resource])[resource].result(10)
    users = entries["sasl.bootstrap.users"]
    assert users.is_sensitive and users.value is None, (users.value, users.is_sensitive)
    assert "alice-secret" not in str({k: e.value for k, e in entries.items()})
    b.kill()
