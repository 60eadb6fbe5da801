"""gunicorn settings picked up from the working directory: check the configuration once, before forking."""

import sys

logger_class = "app.access_log.RedactingLogger"  # tokens that ride in URLs never reach a log line


def on_starting(server):  # type: ignore[no-untyped-def]
    from chathooks.rules import load_rules
    from chathooks.settings import ConfigError, Settings

    try:
        settings = Settings.from_env()
        settings.require_secrets()
        load_rules(settings.rules_path)
    except ConfigError as exc:
        print(f"chathooks: configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
