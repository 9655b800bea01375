"""One job in the job thread: find the source, decode, run the speech stages, write the outputs. No network."""
