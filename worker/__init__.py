"""The worker: resident whisperX models, one queue message at a time (see the worker issue)."""
