"""A worker on another machine: the job's audio comes from the transfer bucket and its outputs go back there."""
