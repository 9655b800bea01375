"""The queue side of a worker: receive, heartbeat, settle, its status record and its stop signals."""
