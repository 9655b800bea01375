"""A transcript's files on disk: committing rendered outputs into the destination (and beside videos)."""
