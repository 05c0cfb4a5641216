"""The embedded default's broker: kombu's filesystem transport, messages renamed into place.

Stock kombu creates a message file under its final name before writing it, so a worker
listing the folder in between took an empty file and stopped on a ``JSONDecodeError``
(seen in this suite's real-worker tests, celery/kombu#1551).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
import uuid
from pathlib import Path
from queue import Empty

import pytest
from django.conf import settings
from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.transport import filesystem as kombu_filesystem

import config.celery_filesystem as atomic_filesystem
from config.celery_app import app


@pytest.fixture
def broker(tmp_path: Path):
    queue = tmp_path / "queue"
    for sub in ("queue", "processed", "control"):
        (tmp_path / sub).mkdir()
    options = {
        "data_folder_in": str(queue),
        "data_folder_out": str(queue),
        "processed_folder": str(tmp_path / "processed"),
        "control_folder": str(tmp_path / "control"),
        "store_processed": False,
    }
    with Connection("filesystem://", transport="config.celery_filesystem:Transport", transport_options=options) as conn:
        yield conn, queue


# kombu's virtual transports keep the declared exchanges and bindings in a class-level
# state: each test's queue has a name of its own so that its binding is written into
# this test's folder.
@pytest.fixture
def name() -> str:
    return f"jobs-{uuid.uuid4().hex}"


def _messages(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".msg"))


def _declared_queue(conn, name: str):
    """The queue, declared and its binding written (one message through it) before a test."""
    queue = conn.SimpleQueue(name)
    queue.put({"warm_up": True})
    queue.get(timeout=1).ack()
    return queue


def _patch_serializer(monkeypatch, replacement):
    # Both modules' names: were the channel's _put ever kombu's own again, the check
    # would run inside it and see its empty file.
    monkeypatch.setattr(atomic_filesystem, "dumps", replacement)
    monkeypatch.setattr(kombu_filesystem, "dumps", replacement)


def test_the_embedded_default_publishes_and_consumes_through_this_transport():
    if settings.REDIS_URL:
        assert app.connection_for_write().transport.driver_type == "redis"
        return
    for conn in (app.connection_for_write(), app.connection_for_read()):
        assert isinstance(conn.transport, atomic_filesystem.Transport)


def test_a_message_file_appears_only_whole(broker, name, monkeypatch):
    conn, folder = broker
    seen_while_writing = []
    real_dumps = atomic_filesystem.dumps

    def recording_dumps(payload):
        seen_while_writing.append(_messages(folder))
        return real_dumps(payload)

    queue = _declared_queue(conn, name)
    _patch_serializer(monkeypatch, recording_dumps)
    queue.put({"student_number": "2024000001"})

    assert seen_while_writing == [[]]
    (written,) = _messages(folder)
    assert written.stat().st_size > 0
    assert not [p for p in folder.iterdir() if p not in (written,)]
    message = queue.get(timeout=1)
    assert message.payload == {"student_number": "2024000001"}
    message.ack()
    queue.close()


def test_a_write_that_fails_half_way_leaves_nothing_for_a_worker(broker, name, monkeypatch):
    conn, folder = broker

    def failing_dumps(payload):
        raise OSError(28, "No space left on device")

    queue = _declared_queue(conn, name)
    _patch_serializer(monkeypatch, failing_dumps)
    with pytest.raises(ChannelError):
        queue.put({"n": 1})
    monkeypatch.undo()

    assert list(folder.iterdir()) == []
    with pytest.raises(Empty):
        queue.get(timeout=0.1)
    queue.put({"n": 2})
    message = queue.get(timeout=1)
    assert message.payload == {"n": 2}
    message.ack()
    queue.close()


def _read_all(options: dict, name: str, sent: int, ballast: str, answers) -> None:
    """A worker's loop in a process of its own: take messages as fast as the folder
    gives them, until ``sent`` have come or 30 s have passed; report them, or the error."""
    with Connection("filesystem://", transport="config.celery_filesystem:Transport", transport_options=options) as conn:
        channel = conn.default_channel
        received: list[int] = []
        deadline = time.monotonic() + 30
        try:
            while len(received) < sent and time.monotonic() < deadline:
                with contextlib.suppress(Empty):
                    payload = channel._get(name)
                    received.append(payload["n"] if payload["ballast"] == ballast else -1)
        except Exception as exc:  # the JSONDecodeError of a file taken half-written
            answers.put(("error", repr(exc)))
            return
        answers.put(("received", sorted(received)))


def test_a_reader_polling_beside_the_writer_gets_every_message_once(broker, name):
    """A worker process lists the folder as fast as it can while 40 large messages (3
    MiB each) are written.  With kombu's own ``_put`` it takes a file still being
    written and fails to decode it (3 runs in 3 on this suite's machine); here every
    message arrives whole, once."""
    conn, _folder = broker
    sent = 40
    ballast = "学" * (1 << 20)
    options = conn.transport_options
    context = multiprocessing.get_context("fork")
    answers = context.Queue()
    reader = context.Process(target=_read_all, args=(options, name, sent, ballast, answers))
    _declared_queue(conn, name)
    reader.start()
    try:
        channel = conn.default_channel
        for n in range(sent):
            channel._put(name, {"n": n, "ballast": ballast})
        answer = answers.get(timeout=40)
    finally:
        reader.join(timeout=5)
        if reader.is_alive():
            reader.kill()

    assert answer == ("received", list(range(sent)))
