"""Create the job queue and its dead-letter queue from create_queue.json.

Runs in two places with the same code: inside the LocalStack container as a ready.d hook
(LocalStack exec()s it, so no `__main__` guard and no `__file__`), and on the host, where
localstack/host.sh runs it with LocalStack's own Python right after the server is healthy.
Reads FLEET_QUEUE_CONFIG, FLEET_QUEUE_NAME and FLEET_MAX_RECEIVE_COUNT like the fleet does.
"""

import json
import os

import boto3

config_path = os.environ.get("FLEET_QUEUE_CONFIG") or "/etc/whisper-fleet/create_queue.json"
with open(config_path) as handle:
    spec = json.load(handle)
queue_name = spec["queue"]["QueueName"]
dlq_name = spec["dead_letter_queue"]["QueueName"]
override = os.environ.get("FLEET_QUEUE_NAME", "").removesuffix(".fifo")
if override:  # same naming rule as fleet.queue_spec.fifo_names
    queue_name, dlq_name = f"{override}.fifo", f"{override}-dlq.fifo"
max_receive_count = int(os.environ.get("FLEET_MAX_RECEIVE_COUNT") or spec["redrive_policy"]["maxReceiveCount"])

sqs = boto3.client(
    "sqs",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or "http://localhost:4566",
    region_name=os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "test",
    aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "test",
)
dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes=spec["dead_letter_queue"]["Attributes"])["QueueUrl"]
dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count})
sqs.create_queue(QueueName=queue_name, Attributes={**spec["queue"]["Attributes"], "RedrivePolicy": redrive})
print(f"whisper-fleet: queues ready: {queue_name} -> {dlq_name} after {max_receive_count} receives")
