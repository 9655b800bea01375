"""The job contract: the message a director sends a worker and the identity hashed into it."""
