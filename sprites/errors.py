"""The error of a bad setting, shared by the configs and commands of every layer above the pipelines."""


class ConfigError(ValueError):
    """A bad configuration: the message names the key, the problem and the fix."""
