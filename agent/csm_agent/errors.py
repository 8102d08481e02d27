"""Errors the CLI turns into exit codes.

Exit codes: 0 sent (or printed), 1 usage or configuration error, 2 the source (files, Docker, Kubernetes,
AWS) could not be read completely, 3 csm did not accept the report (rejected it, or stayed unreachable
after every retry), 4 the report was sent but csm's journal failed the witness check (a checkpoint
inconsistent with the one kept from an earlier run, or one not signed by the pinned key).
"""

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_SOURCE = 2
EXIT_SERVER = 3
EXIT_JOURNAL = 4


class AgentError(Exception):
    """Base class: carries the exit code the CLI returns for it."""

    exit_code = EXIT_USAGE


class UsageError(AgentError):
    """Bad flags, a missing option, an unreadable config file."""

    exit_code = EXIT_USAGE


class SourceError(AgentError):
    """The environment could not be listed or fingerprinted completely: nothing is reported."""

    exit_code = EXIT_SOURCE


class ServerError(AgentError):
    """csm rejected the report, or could not be reached after all retries."""

    exit_code = EXIT_SERVER

    def __init__(self, message, status=None, code=None, fields=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields = fields or {}


class JournalError(AgentError):
    """csm's journal contradicts what this agent saw before (or is not signed by the pinned key)."""

    exit_code = EXIT_JOURNAL
