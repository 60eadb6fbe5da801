"""The ``chathooks`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from chathooks.settings import ConfigError


class UsageError(Exception):
    """A command line that means nothing: one line on stderr, exit 2."""

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(f"{prog}: {message} (see {prog} --help)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(self.prog, message)


def _run(args: argparse.Namespace) -> int:
    from cli import runner

    return runner.run()


def _flower(args: argparse.Namespace) -> int:
    from cli import flower

    return flower.main()


def _simulate(args: argparse.Namespace) -> int:
    from cli import simulate

    return simulate.run(args.url, sys.stdout)


def _livechat_setup(args: argparse.Namespace) -> int:
    from chathooks.platforms.livechat.setup import setup
    from chathooks.settings import Settings

    setup(Settings.from_env(), args.url, sys.stdout, webhook_type=args.type)
    return 0


def _lhc_template(args: argparse.Namespace) -> int:
    from chathooks.platforms.lhc.setup import print_template
    from chathooks.rules import load_rules
    from chathooks.settings import Settings

    settings = Settings.from_env()
    token = settings.lhc_secrets[0] if settings.lhc_secrets else None
    if args.show_token and token is None:
        raise ConfigError("LHC_WEBHOOK_SECRETS is not set: there is no token to show")
    rules = load_rules(settings.rules_path)
    print_template(args.url, token, sys.stdout, rules.lhc.rating_question, show_token=args.show_token)
    return 0


def _chat(args: argparse.Namespace) -> int:
    import redis

    from chathooks.keys import Keys
    from chathooks.redis_client import state_client
    from chathooks.settings import Settings
    from cli import chat

    settings = Settings.from_env()
    try:
        entries = chat.story(state_client(settings), Keys(settings.key_prefix),
                             args.chat_id, source=args.source, organization=args.org)
    except redis.RedisError as exc:
        print(f"chathooks: cannot use the Redis at REDIS_URL: {exc}", file=sys.stderr)
        return 2
    if not entries:
        print(f"chathooks chat: nothing is known of chat {args.chat_id} (never seen, or expired)", file=sys.stderr)
        return 1
    chat.render(args.chat_id, entries, args.json, sys.stdout)
    return 0


def _tenants(args: argparse.Namespace) -> int:
    import redis

    from chathooks.platforms.livechat.accounts import AccountsClient
    from chathooks.platforms.livechat.tenants import TenantStore
    from chathooks.redis_client import state_client
    from chathooks.settings import Settings
    from cli import tenants

    settings = Settings.from_env()
    if settings.marketplace is None:
        raise ConfigError("multi-license mode is off: LIVECHAT_CLIENT_SECRET (with LIVECHAT_CLIENT_ID, "
                          "CHATHOOKS_PUBLIC_URL and CHATHOOKS_SECRET_KEY) is not set")
    store = TenantStore(state_client(settings), settings.key_prefix,
                        settings.marketplace.secret_keys)
    out, err = sys.stdout, sys.stderr
    try:
        static = tenants.static_tenant(settings)
        if args.tenants_command == "list":
            return tenants.list_tenants(store, args.json, out, static)
        if args.tenants_command == "show":
            return tenants.show(store, args.organization, args.json, out, err, static)
        if args.tenants_command == "rotate":
            return tenants.rotate(store, out)
        return tenants.remove(store, AccountsClient(settings.marketplace), args.organization, out, err, static)
    except redis.RedisError as exc:
        print(f"chathooks: cannot use the Redis at REDIS_URL: {exc}", file=sys.stderr)
        return 2


def _dlq(args: argparse.Namespace) -> int:
    import redis

    from chathooks.redis_client import state_client
    from chathooks.settings import Settings
    from cli import dlq
    from workers.dead_letters import DeadLetters

    target = None if args.dlq_command in ("list", "show") else _dlq_target(args)
    try:
        older_than = None if args.older_than is None else dlq.duration(args.older_than)
    except ValueError as exc:
        raise UsageError(f"chathooks dlq {args.dlq_command}", str(exc)) from None
    match = dlq.selection(args.handler, args.kind, args.chat, older_than, organization=args.org)
    settings = Settings.from_env()
    store = DeadLetters(state_client(settings), settings.key_prefix)
    out, err = sys.stdout, sys.stderr
    try:
        if args.dlq_command == "list":
            return dlq.list_items(store, match, args.json, out)
        if args.dlq_command == "show":
            return dlq.show(store, args.id, args.json, out, err)
        run = dlq.replay if args.dlq_command == "replay" else dlq.purge
        return run(store, target or match, out, err)
    except redis.RedisError as exc:
        print(f"chathooks: cannot use the Redis at REDIS_URL: {exc}", file=sys.stderr)
        return 2


def _dlq_target(args: argparse.Namespace) -> str | None:
    """The ID of ``replay ID`` / ``purge ID``, or None for filters (``replay --all``, ``purge --older-than``)."""
    prog = f"chathooks dlq {args.dlq_command}"
    filtered = any(v is not None for v in (args.handler, args.kind, args.chat, args.older_than, args.org))
    if args.id is not None:
        if filtered or args.all:
            raise UsageError(prog, "give an ID or filters, not both")
        return args.id
    if args.dlq_command == "replay" and not (args.all or args.org):
        raise UsageError(prog, "give an ID, --org ORG, or --all (with filters or without)")
    if args.dlq_command == "purge" and args.older_than is None:
        raise UsageError(prog, "give an ID or --older-than DURATION (0s: everything)")
    return None


def _dlq_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--handler", metavar="NAME", help="only this handler's items (e.g. triggers.act)")
    parser.add_argument("--kind", help="only items whose event is of this kind (e.g. chat_ended)")
    parser.add_argument("--chat", metavar="CHAT_ID", help="only this chat's items")
    parser.add_argument("--org", metavar="ORG", help="only this organization's items (parked work included)")
    parser.add_argument("--older-than", metavar="DURATION",
                        help="only items dead-lettered at least this long ago: 30s, 15m, 2h, 7d")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="chathooks", description="Webhook automation for live-chat platforms.")
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

    chat = commands.add_parser("chat", help="a chat's story: deliveries, handler runs, effects, timers")
    chat.add_argument("chat_id", metavar="CHAT_ID")
    chat.add_argument("--json", action="store_true", help="print JSON (SPEC §8's shape)")
    chat.add_argument("--source", help="only this platform's entries (ids that collide across platforms)")
    chat.add_argument("--org", help="only this organization's entries (ids that collide across licenses)")
    chat.set_defaults(func=_chat)

    lhc = commands.add_parser("lhc", help="Live Helper Chat tasks").add_subparsers(dest="lhc_command", required=True)
    template = lhc.add_parser("template", help="print the Rest API call, trigger and webhook rows to create in LHC")
    template.add_argument("--url", required=True, help="public URL of POST /webhooks/lhc")
    template.add_argument("--show-token", action="store_true", help="print the Bearer token (else it is masked)")
    template.set_defaults(func=_lhc_template)

    flower = commands.add_parser("flower", help="run Flower (refuses a public address without FLOWER_BASIC_AUTH)")
    flower.set_defaults(func=_flower)

    dlq = commands.add_parser("dlq", help="the dead-letter store: list, show, replay, purge").add_subparsers(
        dest="dlq_command", metavar="COMMAND", required=True)
    listing = dlq.add_parser("list", help="list dead letters, oldest first")
    _dlq_filters(listing)
    listing.add_argument("--json", action="store_true", help="every item in full, as JSON")
    show = dlq.add_parser("show", help="one dead letter in full: event, every error, times")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="as JSON")
    show.set_defaults(handler=None, kind=None, chat=None, older_than=None, org=None)
    replay = dlq.add_parser("replay", help="put dead letters back in the pipeline (done side effects are skipped)")
    replay.add_argument("id", nargs="?")
    replay.add_argument("--all", action="store_true", help="every item matching the filters")
    _dlq_filters(replay)
    purge = dlq.add_parser("purge", help="delete dead letters")
    purge.add_argument("id", nargs="?")
    _dlq_filters(purge)
    purge.set_defaults(all=False)
    for command in (listing, show, replay, purge):
        command.set_defaults(func=_dlq)

    tenants = commands.add_parser("tenants", help="the LiveChat organizations that installed the app").add_subparsers(
        dest="tenants_command", metavar="COMMAND", required=True)
    listing = tenants.add_parser("list", help="every tenant: status, license, region, bot, token expiry")
    listing.add_argument("--json", action="store_true", help="as JSON")
    show = tenants.add_parser("show", help="one tenant in full (never a token)")
    show.add_argument("organization", metavar="ORG")
    show.add_argument("--json", action="store_true", help="as JSON")
    remove = tenants.add_parser("remove", help="revoke the tenant's tokens and delete its record")
    remove.add_argument("organization", metavar="ORG")
    rotate = tenants.add_parser("rotate", help="re-encrypt every tenant's secrets with the first CHATHOOKS_SECRET_KEY")
    for command in (listing, show, remove, rotate):
        command.set_defaults(func=_tenants)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"chathooks: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
