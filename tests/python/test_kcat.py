"""Debian's kcat (librdkafka 2.0.2, which mis-parses tagged fields that hold defaults) produces and
consumes with every codec; keys and values come back equal."""

import shutil
import subprocess

import pytest

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


@pytest.mark.parametrize("codec", CODECS)
def test_kcat_round_trip(broker, codec):
    kcat = shutil.which("kcat")
    assert kcat, "kcat is installed by scripts/test.sh"
    topic = f"kcat-{codec}"
    lines = [f"key{i}:value-{codec}-{i}" for i in range(50)]
    produced = subprocess.run([kcat, "-P", "-b", broker.bootstrap, "-t", topic, "-z", codec, "-K:", "-X", "acks=all"],
                              input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run([kcat, "-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
                               "-f", "%o|%k|%s\\n"], capture_output=True, text=True, timeout=60)
    assert consumed.returncode == 0, consumed.stderr
    got = consumed.stdout.splitlines()
    assert got == [f"{i}|key{i}|value-{codec}-{i}" for i in range(50)]
