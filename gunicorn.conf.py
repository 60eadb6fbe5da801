"""gunicorn settings picked up from the working directory: check the configuration once, before forking."""

import sys


def on_starting(server):  # type: ignore[no-untyped-def]
    from chathooks.settings import ConfigError, Settings

    try:
        Settings.from_env().require_secrets()
    except ConfigError as exc:
        print(f"chathooks: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
