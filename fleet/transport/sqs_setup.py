"""The two SQS queues as create_queue.json describes them: created if missing, brought in line if not, redrive wired."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from fleet.transport.queue import QUEUE_GONE_CODES, QueueInfo
from fleet.transport.spec import QueueSpec

# Attributes SQS refuses to change on an existing queue.
_IMMUTABLE_ATTRIBUTES = {"FifoQueue"}


def create_queues(client: Any, spec: QueueSpec) -> QueueInfo:
    """Create both queues if missing (idempotent) and wire the redrive policy; botocore errors pass through."""
    dlq_url = _create_or_update(client, spec.dlq_name, spec.dlq_attributes)
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count})
    url = _create_or_update(client, spec.queue_name, {**spec.queue_attributes, "RedrivePolicy": redrive})
    return _describe(client, url, dlq_url)


def find_queues(client: Any, spec: QueueSpec) -> QueueInfo | None:
    """Both queues if they exist, without creating anything."""
    url = _url_if_exists(client, spec.queue_name)
    dlq_url = _url_if_exists(client, spec.dlq_name)
    return None if url is None or dlq_url is None else _describe(client, url, dlq_url)


def _url_if_exists(client: Any, name: str) -> str | None:
    try:
        return client.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in QUEUE_GONE_CODES:
            return None
        raise


def _create_or_update(client: Any, name: str, attributes: dict[str, str]) -> str:
    """Create the queue, or bring an existing one's attributes in line with the spec."""
    url = _url_if_exists(client, name)
    if url is None:
        try:
            return client.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            url = client.get_queue_url(QueueName=name)["QueueUrl"]  # created meanwhile by another
    current = client.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    changed = {k: v for k, v in attributes.items() if k not in _IMMUTABLE_ATTRIBUTES and current.get(k) != v}
    if changed:
        client.set_queue_attributes(QueueUrl=url, Attributes=changed)
    return url


def _describe(client: Any, url: str, dlq_url: str) -> QueueInfo:
    attrs = client.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "CreatedTimestamp"])["Attributes"]
    return QueueInfo(url=url, arn=attrs["QueueArn"], created_timestamp=attrs["CreatedTimestamp"], dlq_url=dlq_url)
