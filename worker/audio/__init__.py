"""Audio in: ffmpeg, the streams of a container, and any file turned into 16 kHz samples."""
