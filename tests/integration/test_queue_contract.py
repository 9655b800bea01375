"""Queue semantics the fleet relies on, run unchanged against LocalStack, moto's server and the in-memory queue."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from fleet.transport.memory import MemoryQueue
from fleet.transport.queue import LOST_LEASE_CODES, JobQueue, OutgoingMessage, QueueError
from fleet.transport.sqs import SqsQueue


@pytest.fixture(params=[pytest.param(server, marks=pytest.mark.queue) for server in ("localstack", "moto")] + ["memory"])
def any_queue(request: pytest.FixtureRequest, make_settings) -> Callable[..., JobQueue]:
    """Opens a fresh job queue on each implementation the worker may talk to: the contract that keeps the fake honest."""

    def open_one(**overrides: object) -> JobQueue:
        if request.param == "memory":
            queue = MemoryQueue(make_settings(**overrides).queue_spec())
        else:
            settings = make_settings(request.getfixturevalue(f"{request.param}_endpoint"), **overrides)
            queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())
        queue.ensure()
        return queue

    return open_one


def message(n: int, group: str | None = None, dedup: str | None = None) -> OutgoingMessage:
    return OutgoingMessage(dedup_id=dedup or f"d{n}", group_id=group or f"g{n}", body=json.dumps({"n": n}))


@pytest.mark.queue
def test_queue_creation_is_idempotent_and_wires_the_dead_letter_queue(sqs_endpoint, make_settings, open_queue):
    # Given a queue created from create_queue.json
    settings = make_settings(sqs_endpoint, max_receive_count=3)
    first = open_queue(settings).info
    # When it is ensured again (a second director, a restart)
    second = open_queue(settings).info
    # Then it is the same queue, and its redrive policy points at the FIFO dead-letter queue
    assert second == first
    assert first.url.endswith(".fifo") and first.dlq_url.endswith("-dlq.fifo")
    queue = open_queue(settings)
    attributes = queue._client.get_queue_attributes(QueueUrl=first.url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == 3
    assert redrive["deadLetterTargetArn"].endswith("-dlq.fifo")
    assert attributes["FifoQueue"] == "true"
    assert attributes["VisibilityTimeout"] == queue.spec.queue_attributes["VisibilityTimeout"]


@pytest.mark.queue
def test_changed_spec_updates_an_existing_queue(sqs_endpoint, make_settings, open_queue):
    # Given an existing queue with maxReceiveCount 5
    open_queue(make_settings(sqs_endpoint, max_receive_count=5))
    # When the director starts with maxReceiveCount 2
    queue = open_queue(make_settings(sqs_endpoint, max_receive_count=2))
    # Then the queue follows the new spec instead of failing with QueueAlreadyExists
    attributes = queue._client.get_queue_attributes(QueueUrl=queue.info.url, AttributeNames=["RedrivePolicy"])
    assert json.loads(attributes["Attributes"]["RedrivePolicy"])["maxReceiveCount"] == 2


def test_duplicate_dedup_id_is_delivered_once(any_queue):
    # Given the same job sent twice (a director re-run within the dedup window)
    queue = any_queue()
    assert queue.send_batch([message(1)]) == []
    assert queue.send_batch([message(1)]) == []
    # When a consumer drains the queue
    first = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    queue.delete(first.receipt_handle)
    # Then there was only one message
    assert queue.receive_one(wait_s=1) is None
    assert queue.counts().visible == 0


def test_one_group_per_file_lets_two_consumers_work_in_parallel(any_queue):
    # Given two files, each in its own message group
    queue = any_queue()
    queue.send_batch([message(1), message(2)])
    # When two consumers receive while neither has finished
    got: list[str] = []

    def consume() -> None:
        received = queue.receive_one(wait_s=2, visibility_timeout_s=60)
        if received:
            got.append(received.body)

    threads = [threading.Thread(target=consume) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then both files are in flight at once
    assert sorted(json.loads(b)["n"] for b in got) == [1, 2]
    assert queue.counts().in_flight == 2


def test_a_shared_group_would_serialise_the_fleet(any_queue):
    # Given two messages in ONE group (what a static MessageGroupId does)
    queue = any_queue()
    queue.send_batch([message(1, group="same"), message(2, group="same")])
    # When the first is in flight
    assert queue.receive_one(wait_s=1, visibility_timeout_s=60) is not None
    # Then nobody else gets the second: the reason the director uses one group per file
    assert queue.receive_one(wait_s=1) is None


def test_redrive_to_dead_letter_queue_after_max_receive_count(any_queue):
    # Given maxReceiveCount 2 and a message nobody ever deletes
    queue = any_queue(max_receive_count=2)
    queue.send_batch([message(1)])
    counts = []
    # When it is received and released (visibility 0) repeatedly
    for _ in range(4):
        received = queue.receive_one(wait_s=1, visibility_timeout_s=30)
        if received is None:
            break
        counts.append(received.receive_count)
        queue.change_visibility(received.receipt_handle, 0)
    # Then it was delivered exactly twice and now waits in the dead-letter queue
    assert counts == [1, 2]
    deadline = time.monotonic() + 5
    while queue.counts().dead_letter != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue.counts().dead_letter == 1
    assert queue.counts().visible == 0


def test_extending_visibility_keeps_a_message_from_other_consumers(any_queue):
    # Given a message received with a 1 s visibility timeout
    queue = any_queue()
    queue.send_batch([message(1)])
    held = queue.receive_one(wait_s=1, visibility_timeout_s=1)
    # When the holder extends it (the worker's heartbeat) and the original timeout passes
    queue.change_visibility(held.receipt_handle, 30)
    time.sleep(1.5)
    # Then no other consumer receives it
    assert queue.receive_one(wait_s=1) is None
    # And releasing it (visibility 0) makes it available again at once
    queue.change_visibility(held.receipt_handle, 0)
    again = queue.receive_one(wait_s=2, visibility_timeout_s=30)
    assert again is not None and again.receive_count == 2


def test_a_heartbeat_on_a_message_another_consumer_finished_is_refused_as_a_lost_lease(any_queue):
    # Given a message whose first delivery ran out of visibility, received again and finished by its second holder
    queue = any_queue()
    queue.send_batch([message(1)])
    first = queue.receive_one(wait_s=1, visibility_timeout_s=1)
    deadline = time.monotonic() + 10
    second = None
    while second is None and time.monotonic() < deadline:
        second = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    assert second is not None and second.receive_count == 2
    queue.delete(second.receipt_handle)
    # When the first holder's heartbeat tries to extend it
    with pytest.raises(QueueError) as refused:
        queue.change_visibility(first.receipt_handle, 30)
    # Then the queue refuses with a code the worker reads as a lost lease
    assert refused.value.code in LOST_LEASE_CODES
    assert queue.counts().pending == 0


def test_dead_letter_and_hand_back_move_a_message_and_keep_the_reason(any_queue):
    # Given two received messages
    queue = any_queue()
    queue.send_batch([message(1), message(2)])
    one = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    two = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    # When one is dead-lettered with a reason and the other handed back
    queue.dead_letter(one, "g-dead", "not decodable")
    queue.hand_back(two, "g-back")
    deadline = time.monotonic() + 5
    while queue.counts().dead_letter != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert queue.counts().dead_letter == 1
    # Then the handed-back copy is a first delivery again, and the dead letter carries its reason
    again = queue.receive_one(wait_s=2, visibility_timeout_s=30)
    assert again is not None and again.receive_count == 1 and again.body == two.body
    letters = queue.receive_dead_letters(hide_s=30)
    assert [(letter.message.body, letter.reason) for letter in letters] == [(one.body, "not decodable")]


def test_a_retry_delay_hides_the_message_and_its_group(any_queue):
    # Given a message released for a retry in 2 s, with a second message of the same file's group behind it
    queue = any_queue()
    queue.send_batch([message(1, group="file"), message(2, group="file", dedup="d2")])
    held = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    queue.change_visibility(held.receipt_handle, 2)
    # When another consumer asks at once
    # Then nothing of that group is delivered until the delay is over, and then the same message first
    assert queue.receive_one(wait_s=0) is None
    deadline = time.monotonic() + 10
    again = None
    while again is None and time.monotonic() < deadline:
        again = queue.receive_one(wait_s=1, visibility_timeout_s=30)
    assert again is not None and again.body == held.body and again.receive_count == 2
