"""Settings: one YAML file validated by the schema in :mod:`config.schema`."""

from config.schema import ConfigError, Settings, load_settings

__all__ = ["ConfigError", "Settings", "load_settings"]
