"""The director: scan the source tree, plan against the outputs, enqueue what is missing."""
