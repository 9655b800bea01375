"""Process plumbing every command shares: logging, exit codes, notifications."""
