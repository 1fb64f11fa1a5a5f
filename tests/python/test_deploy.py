"""The Helm chart (deploy/helm/raftstream): linted and rendered with several value sets, every
rendered manifest validated against the Kubernetes schemas, its wiring checked, and three
raftstream processes started exactly as the rendered chart starts pods 0-2 (same command, env
and config file; the headless DNS names resolve to one loopback address per pod) forming one
cluster that real clients produce to and consume from."""

import json
import os
import re
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from broker import BIN, LAUNCHED
from clients import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "raftstream"
HELM = os.environ.get("RAFTSTREAM_HELM", str(ROOT / "target" / "tools" / "helm"))
RELEASE, NAMESPACE = "rs", "kafka"

VALUE_SETS = {
    "default": [],
    "one-replica": ["--set", "replicas=1"],
    "five-nodeport": ["--set", "replicas=5", "--set", "external.enabled=true",
                      "--set", "external.hosts={203.0.113.7}", "--set", "serviceMonitor.enabled=true"],
    "three-loadbalancer": ["--set", "external.enabled=true", "--set", "external.type=LoadBalancer",
                           "--set", "external.hosts={a.example.com,b.example.com,c.example.com}"],
}


def helm(*args, check=True):
    assert Path(HELM).exists(), f"no helm at {HELM}: scripts/install-helm.sh installs it"
    return subprocess.run([HELM, *args], capture_output=True, text=True, check=check)


def render(*values):
    out = helm("template", RELEASE, str(CHART), "--namespace", NAMESPACE, *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_chart_lints_renders_and_validates(name, tmp_path):
    values = VALUE_SETS[name]
    lint = helm("lint", str(CHART), *values, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(*values)
    # Kinds the Kubernetes schemas describe; ServiceMonitor is a CRD they do not (checked below).
    core = [d for d in docs if d["kind"] != "ServiceMonitor"]
    for i, doc in enumerate(core):
        (tmp_path / f"{i}.yaml").write_text(yaml.safe_dump(doc))
    files = sorted(str(p) for p in tmp_path.glob("*.yaml"))
    check = subprocess.run(["kubernetes-validate", "--strict", "--kubernetes-version", "1.30.0", *files],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("passed") == len(core), check.stdout
    replicas = by_kind(docs, "StatefulSet")[0]["spec"]["replicas"]
    external = [s for s in by_kind(docs, "Service") if s["metadata"]["name"].endswith("-external")]
    assert len(external) == (replicas if "external.enabled=true" in values else 0)


@pytest.mark.parametrize("bad", [
    ["--set", "replicas=2"],                                 # not a controller majority size
    ["--set", "config.node\\.id=7"],                         # the chart sets node ids itself
    ["--set", "external.enabled=true"],                      # outside access without an address
    ["--set", "external.enabled=true", "--set", "external.hosts={a,b}"],  # 2 hosts for 3 pods
])
def test_chart_refuses_bad_values(bad):
    lint = helm("lint", str(CHART), *bad, check=False)
    assert lint.returncode != 0, lint.stdout


def test_chart_wiring():
    docs = render("--set", "serviceMonitor.enabled=true")
    sts = by_kind(docs, "StatefulSet")[0]
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    headless = services[sts["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"]
    assert sts["spec"]["podManagementPolicy"] == "Parallel"
    pod = sts["spec"]["template"]
    container = pod["spec"]["containers"][0]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health/live", "port": "http"}
    assert "--http-listen 0.0.0.0:%d" % port_names["http"] in container["args"][0]
    # Graceful shutdown (10 s by default) plus the preStop pause fits in the grace period.
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pre_stop + 10 < pod["spec"]["terminationGracePeriodSeconds"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"]
    assert container["securityContext"]["readOnlyRootFilesystem"]
    # Only /var/lib/raftstream (the data volume) and the config are mounted: nothing else is written.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts["/var/lib/raftstream"] == sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    pdb = by_kind(docs, "PodDisruptionBudget")[0]
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    for svc in services.values():
        # Every Service selects the pods (a per-pod one additionally by the pod's name).
        selector = {k: v for k, v in svc["spec"]["selector"].items() if k != "statefulset.kubernetes.io/pod-name"}
        assert selector and selector.items() <= pod["metadata"]["labels"].items(), svc
    # The ServiceMonitor selects exactly the headless Service and scrapes a port it has.
    monitor = by_kind(docs, "ServiceMonitor")[0]
    selected = [s for s in services.values()
                if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()]
    assert selected == [headless]
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in headless["spec"]["ports"]}


def k8s_expand(text, env):
    """Kubernetes' expansion of a container's command and args: `$(VAR)` from the env, `$$` -> `$`."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, text)


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status
    except (urllib.error.URLError, OSError):
        return None


def test_pods_0_to_2_as_rendered_form_a_cluster(tmp_path, monkeypatch):
    """Each pod is a process in its own mount namespace whose /etc/hosts maps the headless names
    to 127.90.0.1-3 (one loopback address per pod, as each pod has its own IP); the rendered
    command runs unchanged but for the image's paths and 0.0.0.0 becoming the pod's address."""
    unshare = ["unshare", "--mount"] if os.geteuid() == 0 else ["unshare", "--map-root-user", "--mount"]
    # Few offsets partitions on a 2-core test machine; set through the chart's ConfigMap.
    docs = render("--set", "config.offsets\\.topic\\.num\\.partitions=3")
    sts = by_kind(docs, "StatefulSet")[0]
    config_toml = by_kind(docs, "ConfigMap")[0]["data"]["raftstream.toml"]
    container = sts["spec"]["template"]["spec"]["containers"][0]
    headless = sts["spec"]["serviceName"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    names = [f"{RELEASE}-{i}.{headless}.{NAMESPACE}.svc" for i in range(3)]
    ips = [f"127.90.0.{i + 1}" for i in range(3)]
    for ip in ips:
        for port in ports.values():
            with socket.socket() as s:
                assert s.connect_ex((ip, port)) != 0, f"something already listens on {ip}:{port}"
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n" + "".join(f"{ip} {name}\n" for ip, name in zip(ips, names)))
    procs = []
    for i in range(3):
        pod_dir = tmp_path / f"pod{i}"
        (pod_dir / "etc").mkdir(parents=True)
        (pod_dir / "data").mkdir()
        (pod_dir / "etc" / "raftstream.toml").write_text(config_toml)
        env = {"POD_NAME": f"{RELEASE}-{i}", "POD_NAMESPACE": NAMESPACE}
        for e in container["env"]:
            ref = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert env[e["name"]] == {"metadata.name": env["POD_NAME"],
                                      "metadata.namespace": NAMESPACE}[ref]
        argv = [k8s_expand(a, env) for a in container["command"] + container["args"]]
        argv = [a.replace("/usr/local/bin/raftstream", BIN)
                 .replace("/etc/raftstream/", f"{pod_dir}/etc/")
                 .replace("/var/lib/raftstream", str(pod_dir / "data"))
                 .replace("0.0.0.0:", f"{ips[i]}:") for a in argv]
        log = open(pod_dir / "log", "w")
        proc = subprocess.Popen(
            unshare + ["sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts), *argv],
            env={**os.environ, **env, "RUST_LOG": "info,openraft=warn"},
            stdout=log, stderr=subprocess.STDOUT)
        LAUNCHED.append(proc)
        procs.append(proc)

    def logs():
        return "\n".join((tmp_path / f"pod{i}" / "log").read_text()[-2000:] for i in range(3))

    def all_ready():
        assert all(p.poll() is None for p in procs), logs()
        return all(http_status(f"http://{ip}:{ports['http']}/health/ready") == 200 for ip in ips)
    wait_for(all_ready, "all three pods ready", timeout=90)

    # Clients resolve the advertised pod names as cluster DNS would.
    real = socket.getaddrinfo
    to_ip = dict(zip(names, ips))
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(to_ip.get(host, host), *a, **k))
    bootstrap = f"{ips[0]}:{ports['kafka']}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    cluster = admin.describe_cluster()
    brokers = {b["broker_id"]: (b["host"], b["port"]) for b in cluster["brokers"]}
    assert brokers == {i + 1: (names[i], ports["kafka"]) for i in range(3)}, brokers
    for i in range(3):
        node = json.loads((tmp_path / f"pod{i}" / "data" / "node.json").read_text())
        assert node["cluster_id"] == cluster["cluster_id"] and node["node_id"] == i + 1, node
    admin.create_topics([NewTopic("chart", num_partitions=3, replication_factor=3)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=20)
    for n in range(60):
        producer.send("chart", value=b"v%d" % n, partition=n % 3)
    producer.flush(60)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=f"{ips[2]}:{ports['kafka']}", consumer_timeout_ms=20000)
    consumer.assign([TopicPartition("chart", p) for p in range(3)])
    consumer.seek_to_beginning()
    got = set()
    for msg in consumer:
        got.add(msg.value)
        if len(got) == 60:
            break
    consumer.close()
    admin.close()
    assert got == {b"v%d" % n for n in range(60)}
    for p in procs:
        p.terminate()
    for p in procs:
        assert p.wait(30) == 0, logs()
    assert "panicked" not in logs()
