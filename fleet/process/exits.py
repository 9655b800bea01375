"""Exit codes shared by every `fleet` subcommand (README lists them)."""

OK = 0
FAILED_FILES = 1  # the run finished, but some files are in the failed state
BAD_INPUT = 2  # missing folder, invalid setting or config, a model that cannot be found
QUEUE = 3  # the queue did not answer, or refused messages
JOB_TIME_LIMIT = 4  # a job overran its time limit (a hung native call): the worker leaves so it restarts fresh
INTERRUPTED = 130  # a second signal, or Ctrl-C
