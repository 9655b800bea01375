"""The queue: the job queue protocol, its SQS implementation (the only boto3 user), an in-memory one, the spec, backoff."""
