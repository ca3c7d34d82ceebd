"""The one exception a user can cause: the CLI prints its message as a single line and exits 2."""


class UserError(Exception):
    """A mistake the user can fix (bad config value, missing file, corrupt input).

    The message names the problem and the fix, in one line, without a traceback.
    """


class Preempted(Exception):
    """Training stopped on a signal (SLURM's warning before preemption or the time limit) after saving
    its resume state; the process exits with 128 + the signal number so the job is seen as failed and
    retried, and the retry resumes (at a SLURM time limit the job is requeued instead: structae.requeue)."""

    def __init__(self, signal_name: str, signum: int, step: int, state_file: object):
        super().__init__(f"stopped by {signal_name} after step {step}; resume state in {state_file}; "
                         "rerun the same command to continue")
        self.signum = signum
        self.exit_code = 128 + signum
