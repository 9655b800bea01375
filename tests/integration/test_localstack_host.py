"""host.sh brings up LocalStack with the queues of create_queue.json, as the compose hook does."""

from __future__ import annotations

import json
import subprocess

import pytest

from fleet.settings import FleetSettings
from fleet.transport.spec import load_queue_spec
from fleet.transport.sqs import SqsQueue
from tests.support.paths import HOST_SCRIPT

pytestmark = pytest.mark.queue


def test_ready_hook_created_the_default_queues_from_create_queue_json(localstack_endpoint, monkeypatch):
    # Given host LocalStack started by localstack/host.sh (which runs the ready.d hook)
    monkeypatch.delenv("FLEET_QUEUE_NAME", raising=False)
    monkeypatch.delenv("FLEET_MAX_RECEIVE_COUNT", raising=False)
    settings = FleetSettings(aws_endpoint_url=localstack_endpoint)
    spec = load_queue_spec(settings.queue_config)
    queue = SqsQueue.connect(settings.queue_endpoint(), spec)
    # When the fleet looks the queues up without creating anything
    info = queue.lookup()
    # Then both exist, with the attributes and redrive policy of create_queue.json
    assert info is not None
    attributes = queue._client.get_queue_attributes(QueueUrl=info.url, AttributeNames=["All"])["Attributes"]
    for name, value in spec.queue_attributes.items():
        assert attributes[name] == value, name
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["maxReceiveCount"] == spec.max_receive_count
    assert redrive["deadLetterTargetArn"].endswith(":" + spec.dlq_name)


def test_status_reports_health(localstack_endpoint):
    port = localstack_endpoint.rsplit(":", 1)[1]
    assert subprocess.run([str(HOST_SCRIPT), "status"], env={"LOCALSTACK_PORT": port, "PATH": "/usr/bin:/bin"}).returncode == 0
    assert subprocess.run([str(HOST_SCRIPT), "status"], env={"LOCALSTACK_PORT": "1", "PATH": "/usr/bin:/bin"}).returncode == 1
