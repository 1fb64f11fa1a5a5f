import pytest

from broker import Broker, kill_launched


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    kill_launched()


@pytest.fixture
def broker(tmp_path):
    b = Broker(tmp_path / "data").start()
    yield b
    b.kill()
    assert "panicked" not in b.log_text(), b.log_text()[-3000:]


@pytest.fixture
def admin(broker):
    """kafka-python's admin client on `broker` (its raw requests decode null fields as None)."""
    from kafka.admin import KafkaAdminClient

    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    yield a
    a.close()
