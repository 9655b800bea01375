"""The job queue on SQS (any endpoint: LocalStack, AWS): with sqs_setup the only code that imports boto3; errors as one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from fleet.transport.queue import (
    DEAD_LETTER_ATTRIBUTES,
    EXPIRED_HANDLE_CODES,
    NO_REASON,
    DeadLetter,
    OutgoingMessage,
    QueueCounts,
    QueueError,
    QueueInfo,
    QueueUnavailable,
    ReceivedMessage,
)
from fleet.transport.spec import QueueSpec, ServiceEndpoint
from fleet.transport.sqs_setup import create_queues, find_queues

T = TypeVar("T")


# A heartbeat answer like this means: do not extend, the lease is short and another worker may be next.
HEARTBEAT_TIMEOUT_S = 3.0
HEARTBEAT_ATTEMPTS = 2


class SqsQueue:
    """The job queue and its dead-letter queue on an SQS endpoint, described by a QueueSpec (a `JobQueue`)."""

    def __init__(self, client: Any, spec: QueueSpec, endpoint: str, max_attempts: int) -> None:
        self._client = client
        self.spec = spec
        self.endpoint = endpoint
        self.max_attempts = max_attempts
        self._info: QueueInfo | None = None

    @classmethod
    def connect(cls, endpoint: ServiceEndpoint, spec: QueueSpec, *, for_heartbeats: bool = False) -> SqsQueue:
        """A client with botocore's standard retry mode (exponential backoff with jitter).

        `for_heartbeats`: short timeouts and few attempts. A heartbeat must answer well within the
        visibility timeout; one call that retries for minutes would hold a message that others already see.
        """
        session = boto3.session.Session(region_name=endpoint.region)
        credentials = {}
        if session.get_credentials() is None and endpoint.url:
            # LocalStack accepts any key; real AWS never gets here because it has no endpoint override.
            credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        attempts, timeout_s = endpoint.max_attempts, endpoint.timeout_s
        read_timeout_s = timeout_s + 25  # long polls hold the request up to 20 s
        if for_heartbeats:
            attempts, timeout_s = HEARTBEAT_ATTEMPTS, min(timeout_s, HEARTBEAT_TIMEOUT_S)
            read_timeout_s = timeout_s
        # total_max_attempts counts the first try too (botocore's max_attempts would add one more).
        config = Config(retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=timeout_s,
                        read_timeout=read_timeout_s)  # fmt: skip
        # None lets boto3 resolve the endpoint as usual (AWS_ENDPOINT_URL_SQS, config files, AWS).
        client = session.client("sqs", endpoint_url=endpoint.url, config=config, **credentials)
        return cls(client, spec, client.meta.endpoint_url, attempts)

    def _call(self, operation: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**kwargs)
        except NoCredentialsError as exc:
            raise QueueError(
                "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (any value for LocalStack)"
            ) from exc
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise QueueError(f"{operation} failed: {error.get('Code')}: {error.get('Message')}", error.get("Code")) from exc
        except BotoCoreError as exc:
            raise QueueUnavailable(
                f"queue endpoint {self.endpoint} unreachable after {self.max_attempts} attempts ({operation}): {exc}"
            ) from exc

    def ensure(self) -> QueueInfo:
        """Create both queues if missing (idempotent) and wire the redrive policy."""

        self._info = self._call("create queues", create_queues, client=self._client, spec=self.spec)
        return self._info

    def lookup(self) -> QueueInfo | None:
        """The queue if it exists, without creating anything."""

        self._info = self._call("look up queue", find_queues, client=self._client, spec=self.spec)
        return self._info

    @property
    def info(self) -> QueueInfo:
        if self._info is None:
            raise QueueError(f"queue {self.spec.queue_name} not opened: call ensure() or lookup() first")
        return self._info

    def send_batch(self, messages: list[OutgoingMessage]) -> list[str]:
        """Send up to 10 messages; returns the dedup ids SQS refused (to retry or report)."""
        entries = [
            {"Id": str(i), "MessageBody": m.body, "MessageGroupId": m.group_id, "MessageDeduplicationId": m.dedup_id}
            for i, m in enumerate(messages)
        ]
        response = self._call("send messages", self._client.send_message_batch, QueueUrl=self.info.url, Entries=entries)
        return [messages[int(failed["Id"])].dedup_id for failed in response.get("Failed", [])]

    def receive_one(self, wait_s: int, visibility_timeout_s: int | None = None) -> ReceivedMessage | None:
        """Long-poll for a single message (MaxNumberOfMessages=1: a worker holds one job at a time)."""
        kwargs: dict[str, Any] = {
            "QueueUrl": self.info.url,
            "MaxNumberOfMessages": 1,
            "WaitTimeSeconds": wait_s,
            "MessageSystemAttributeNames": ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp"],
        }
        if visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = visibility_timeout_s
        messages = self._call("receive", self._client.receive_message, **kwargs).get("Messages", [])
        if not messages:
            return None
        raw = messages[0]
        attributes = raw.get("Attributes", {})
        first_ms = attributes.get("ApproximateFirstReceiveTimestamp")
        return ReceivedMessage(
            message_id=raw["MessageId"],
            receipt_handle=raw["ReceiptHandle"],
            body=raw["Body"],
            receive_count=int(attributes.get("ApproximateReceiveCount", 1)),
            first_received_at=int(first_ms) / 1000 if first_ms else None,
        )

    def change_visibility(self, receipt_handle: str, timeout_s: int) -> None:
        """Extend (heartbeat) or release (0) a received message."""
        self._call(
            "change visibility",
            self._client.change_message_visibility,
            QueueUrl=self.info.url,
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=timeout_s,
        )

    def delete(self, receipt_handle: str) -> None:
        """Acknowledge a job whose outputs are durably on disk."""
        self._call("delete", self._client.delete_message, QueueUrl=self.info.url, ReceiptHandle=receipt_handle)

    def dead_letter(self, message: ReceivedMessage, group_id: str, reason: str) -> None:
        """Move a message that can never succeed to the dead-letter queue now, with the reason.

        SQS would only redrive it after maxReceiveCount receives; a permanent failure should not
        cost that many attempts. Sent first, deleted second: a crash in between leaves a
        duplicate in the dead-letter queue (deduplicated for 5 minutes), never a loss.
        """
        self._move("dead-letter", message, self.info.url, self.info.dlq_url, group_id, message.message_id,
                   {"failure_reason": reason or "unknown"})  # fmt: skip

    def hand_back(self, message: ReceivedMessage, group_id: str) -> None:
        """Give an unfinished message back for another worker, without it counting as a failed attempt.

        Making it visible again would raise its receive count, and a few redeploys during one long
        file would dead-letter it. A fresh copy starts at zero. Its deduplication id is this delivery's
        message id, so a retried send is deduplicated; the copy queues behind the original in its
        group, which is deleted second: a crash in between leaves a duplicate (the second delivery
        finds the outputs done), never a loss.
        """
        self._move("hand back", message, self.info.url, self.info.url, group_id, f"handback-{message.message_id}")

    def _move(
        self, operation: str, message: ReceivedMessage, from_url: str, to_url: str, group_id: str, dedup_id: str,
        attributes: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """A copy sent to `to_url`, then the original deleted from `from_url`: a crash between leaves a duplicate, not a loss."""
        self._send_copy(operation, message, to_url, group_id, dedup_id, attributes)
        self._call(operation, self._client.delete_message, QueueUrl=from_url, ReceiptHandle=message.receipt_handle)

    def _send_copy(
        self, operation: str, message: ReceivedMessage, to_url: str, group_id: str, dedup_id: str,
        attributes: dict[str, str] | None = None,
    ) -> str:  # fmt: skip
        """`message`'s body sent to `to_url` with string `attributes` (each cut to 1000 characters); the copy's id."""
        extra = {"MessageAttributes": {name: {"DataType": "String", "StringValue": value[:1000]}
                                       for name, value in attributes.items()}} if attributes else {}  # fmt: skip
        sent = self._call(operation, self._client.send_message, QueueUrl=to_url, MessageBody=message.body,
                          MessageGroupId=group_id, MessageDeduplicationId=dedup_id, **extra)  # fmt: skip
        return str(sent.get("MessageId", ""))

    def receive_dead_letters(self, hide_s: int) -> list[DeadLetter]:
        """Up to 10 dead-lettered messages with their reasons, hidden for `hide_s` (so the next call gets others)."""
        response = self._call(
            "receive dead letters", self._client.receive_message, QueueUrl=self.info.dlq_url, MaxNumberOfMessages=10,
            # A short wait, not 0: SQS's short poll samples some of its servers and may answer empty too early.
            WaitTimeSeconds=1, VisibilityTimeout=hide_s, MessageAttributeNames=list(DEAD_LETTER_ATTRIBUTES),
            MessageSystemAttributeNames=["MessageGroupId", "SentTimestamp", "ApproximateReceiveCount"],
        )  # fmt: skip
        letters = []
        for raw in response.get("Messages", []):
            attributes = raw.get("Attributes", {})
            carried = {name: value.get("StringValue", "") for name, value in raw.get("MessageAttributes", {}).items()}
            message = ReceivedMessage(raw["MessageId"], raw["ReceiptHandle"], raw["Body"],
                                      int(attributes.get("ApproximateReceiveCount", 1)))  # fmt: skip
            letters.append(DeadLetter(
                message, attributes.get("MessageGroupId", ""),
                carried.get("failure_reason") or NO_REASON,
                float(carried.get("dead_lettered_at") or int(attributes.get("SentTimestamp", 0)) / 1000),
                carried.get("fleet_listing", ""),
            ))  # fmt: skip
        return letters

    def requeue_dead_letter(self, letter: DeadLetter, listing: str) -> str:
        """Move a dead letter to the back of its group, marked with `listing`, reason and time kept; the copy's id.

        In a FIFO queue a received message hides the rest of its group: a pass that must see every dead
        letter moves each one it has seen behind the others (sent first, deleted second: never a loss).
        """
        attributes = {"failure_reason": letter.reason, "dead_lettered_at": repr(letter.dead_lettered_at),
                      "fleet_listing": listing}  # fmt: skip
        copy_id = self._send_copy("requeue dead letter", letter.message, self.info.dlq_url, letter.group_id or "dead",
                                  f"listing-{listing}-{letter.message.message_id}", attributes)  # fmt: skip
        self.forget_dead_letter(letter)
        return copy_id

    def forget_dead_letter(self, letter: DeadLetter) -> bool:
        """Delete a dead letter already moved or acted on; False when its hide ran out first (it comes back)."""
        try:
            self.delete_dead_letter(letter)
        except QueueError as exc:
            if exc.code not in EXPIRED_HANDLE_CODES:
                raise
            return False
        return True

    def release_dead_letter(self, letter: DeadLetter) -> None:
        """Make a received dead letter visible again, as it was."""
        self._call("release dead letter", self._client.change_message_visibility, QueueUrl=self.info.dlq_url,
                   ReceiptHandle=letter.message.receipt_handle, VisibilityTimeout=0)  # fmt: skip

    def delete_dead_letter(self, letter: DeadLetter) -> None:
        """Drop one dead letter (purged, or its file queued again)."""
        self._call("delete dead letter", self._client.delete_message, QueueUrl=self.info.dlq_url,
                   ReceiptHandle=letter.message.receipt_handle)  # fmt: skip

    def purge_dead_letters(self) -> None:
        """Drop every dead-lettered message (their failure records stay)."""
        self._call("purge dead letters", self._client.purge_queue, QueueUrl=self.info.dlq_url)

    def drained(self) -> bool:
        """Nothing waiting, in flight or delayed; False when the queue cannot be asked."""
        try:
            counts = self.counts()
        except QueueError:
            return False
        return counts.pending == 0

    def counts(self) -> QueueCounts:
        """Visible, in-flight, delayed and dead-letter counts from queue attributes."""

        def read() -> QueueCounts:
            names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"]
            main = self._client.get_queue_attributes(QueueUrl=self.info.url, AttributeNames=names)["Attributes"]
            dead = self._client.get_queue_attributes(QueueUrl=self.info.dlq_url, AttributeNames=names[:1])["Attributes"]
            return QueueCounts(
                visible=int(main.get(names[0], 0)),
                in_flight=int(main.get(names[1], 0)),
                delayed=int(main.get(names[2], 0)),
                dead_letter=int(dead.get(names[0], 0)),
            )

        return self._call("read queue counts", read)
