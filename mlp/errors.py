"""Errors the CLI turns into messages and exit codes (kept light: importing this module imports nothing heavy)."""


class ProgramError(Exception):
    """The program failed under the planner (a bug in a component, or an unanswerable invoke)."""


class AccountError(Exception):
    """An account tool could not do its work (credentials, permissions, region, a failed AWS call); the message
    says what and what to do."""


class PlanFileError(Exception):
    """A saved plan file cannot be read or is not a plan."""
