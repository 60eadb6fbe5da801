"""The ``chathooks`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from chathooks.settings import ConfigError


def _run(args: argparse.Namespace) -> int:
    from chathooks import runner

    return runner.run()


def _flower(args: argparse.Namespace) -> int:
    from chathooks import flower

    return flower.main()


def _simulate(args: argparse.Namespace) -> int:
    from chathooks import simulate

    return simulate.run(args.url, sys.stdout)


def _livechat_setup(args: argparse.Namespace) -> int:
    from chathooks.settings import Settings
    from chathooks.setup import setup

    setup(Settings.from_env(), args.url, sys.stdout, webhook_type=args.type)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chathooks", description="Webhook automation for live-chat platforms.")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run web, worker, beat and flower locally (what `make run` does)")
    run.set_defaults(func=_run)

    simulate = commands.add_parser("simulate", help="send a realistic conversation to the ingress")
    simulate.add_argument("--url", default="http://127.0.0.1:8000", help="ingress base URL")
    simulate.set_defaults(func=_simulate)

    livechat = commands.add_parser("livechat", help="LiveChat account tasks").add_subparsers(
        dest="livechat_command", required=True)
    setup = livechat.add_parser("setup", help="register webhooks, ensure the bot, enable license webhooks")
    setup.add_argument("--url", required=True, help="public URL of POST /webhooks/livechat")
    setup.add_argument("--type", choices=("license", "bot"), default="license", help="webhook type")
    setup.set_defaults(func=_livechat_setup)

    flower = commands.add_parser("flower", help="run Flower (refuses a public address without FLOWER_BASIC_AUTH)")
    flower.set_defaults(func=_flower)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"chathooks: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
