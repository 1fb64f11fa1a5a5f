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
