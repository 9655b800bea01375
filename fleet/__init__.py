"""whisper-fleet core: settings, job messages, queue adapter, output layout and logging."""

__version__ = "0.1.0"
