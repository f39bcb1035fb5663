"""`callguard`: run the server and administer it."""

from __future__ import annotations

import argparse
import importlib
import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from moderation.keyword_config import BUILTIN_LISTS
from relay.config import DEFAULT_TOML, Config, ConfigError, load_config
from relay.records import export as call_export
from relay.records import retention
from relay.records.access_log import cli_user, record_access
from relay.records.database import NoCallLog, connect
from relay.web.accounts import ROLES, AccountError, Accounts, accounts_for

# `callguard users COMMAND NAME`: what each does (the console's Accounts section does the same).
ACCOUNT_COMMANDS = {
    "unlock": "lift the lockout of an account after too many failed sign-ins",
    "disable": "stop an account signing in; its sessions end",
    "enable": "let a disabled account sign in again",
    "reset-password": "set a new password (printed, or read with --password-stdin), to be changed at the next sign-in",
    "revoke": "end every session of an account (it stays usable: sign in again)",
}

# The offline tools' modules, loaded only for their own command: `callguard serve` (the
# live path) never imports the offline package.
OFFLINE_TOOLS = {
    "eval-text": "offline.eval_text",
    "eval-calls": "offline.eval_calls",
    "replay": "offline.replay",
    "train-text": "offline.train_text",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    wanted = next((a for a in argv if not a.startswith("-")), None)
    tools: dict[str, ModuleType] = {}

    def offline_tool(parser: argparse.ArgumentParser, name: str) -> None:
        if name == wanted or (name == "train-text" and wanted == "models" and name in argv):
            tools[name] = importlib.import_module(OFFLINE_TOOLS[name])
            tools[name].add_arguments(parser)

    parser = argparse.ArgumentParser(prog="callguard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the call server")
    _config_arg(serve)
    serve.add_argument("--host", help="listen address (overrides server.host)")
    serve.add_argument("--port", type=int, help="listen port (overrides server.port)")
    serve.add_argument("--delay", type=float, help="customer-to-counselor delay in seconds (overrides delay.delay_s)")

    tier = sub.add_parser(
        "stt-tier",
        help="run the shared inference tier on Ray Serve ([stt_tier]): the [stt] model, and the [classifier] "
        "one when classifier.backend = ray",
    )
    _config_arg(tier)

    users = sub.add_parser("users", help="staff accounts")
    users_sub = users.add_subparsers(dest="users_command", required=True)
    add = users_sub.add_parser("add", help="create an account and print its password")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    _config_arg(add)
    listing = users_sub.add_parser("list", help="list accounts")
    _config_arg(listing)
    for command, help_text in ACCOUNT_COMMANDS.items():
        account = users_sub.add_parser(command, help=help_text)
        account.add_argument("name")
        if command == "reset-password":
            account.add_argument(
                "--password-stdin", action="store_true", help="read the new password from standard input"
            )
        _config_arg(account)

    check = sub.add_parser("config", help="check a config file and print the result")
    _config_arg(check)
    check.add_argument(
        "--default", action="store_true", help="print the default config, every setting commented, to start a file from"
    )
    check.add_argument(
        "--lists",
        type=Path,
        metavar="DIR",
        help="copy the shipped keyword lists into DIR, to edit them (then keywords.lists_dir = DIR)",
    )

    text_eval = sub.add_parser("eval-text", help="precision/recall of the text checks on labelled sentences")
    offline_tool(text_eval, "eval-text")
    _config_arg(text_eval)
    calls_eval = sub.add_parser("eval-calls", help="muting figures on recorded calls, in simulated time")
    offline_tool(calls_eval, "eval-calls")
    _config_arg(calls_eval)

    logged = sub.add_parser("calls", help="logged calls: purge past retention, export one as evidence")
    logged_sub = logged.add_subparsers(dest="calls_command", required=True)
    purge = logged_sub.add_parser("purge", help="delete calls older than retention.days with their recordings")
    retention.add_arguments(purge)
    _config_arg(purge)
    _data_dir_arg(purge)
    export = logged_sub.add_parser("export", help="write one call's audio, transcript and decisions as a zip")
    call_export.add_arguments(export)
    _config_arg(export)
    _data_dir_arg(export)
    replay_cmd = sub.add_parser("replay", help="re-run moderation over a logged call under another config")
    offline_tool(replay_cmd, "replay")
    _config_arg(replay_cmd)
    _data_dir_arg(replay_cmd)

    models = sub.add_parser(
        "models", help="the speech model and the classifier in models_dir; retraining the shipped text model"
    )
    models_sub = models.add_subparsers(dest="models_command", required=True)
    pull = models_sub.add_parser(
        "pull", help="fetch models from the hub (on a connected machine); resumable, checksummed"
    )
    pull.add_argument(
        "name",
        nargs="?",
        help="tiny, base, small, medium, large-v3, ... or a hub repository id "
        "(default: every model the config uses: stt.model, and classifier.model when enabled)",
    )
    pull.add_argument("--classifier", action="store_true", help="NAME is a classifier (e.g. smilegate-ai/kor_unsmile)")
    pull.add_argument("--revision", help="a hub commit or tag (default: the newest)")
    _config_arg(pull)
    models_list = models_sub.add_parser("list", help="show the models in stt.models_dir")
    _config_arg(models_list)
    train_text = models_sub.add_parser(
        "train-text", help="retrain the shipped text model from the corpora and QA marks, with figures before/after"
    )
    offline_tool(train_text, "train-text")
    _config_arg(train_text)

    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.command == "serve":
            config = config.with_overrides(args.host, args.port, args.delay)
    except ConfigError as exc:
        print(f"callguard: config error: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return _serve(config, lambda: load_config(args.config).with_overrides(args.host, args.port, args.delay))
    if args.command == "stt-tier":
        return _stt_tier(config)
    if args.command == "config":
        return _config(args)
    if args.command == "models" and args.models_command == "train-text":
        return int(tools["train-text"].main(args, config.text_model, config.keywords))
    if args.command == "models":
        return _models(args, config)
    if args.command in ("eval-text", "eval-calls"):
        return int(tools[args.command].main(args, config))
    if args.command in ("calls", "replay"):
        try:
            if args.command == "replay":
                return int(tools["replay"].main(args, config))
            return (retention.main if args.calls_command == "purge" else call_export.main)(args, config)
        except NoCallLog as exc:
            print(f"callguard {args.command}: {exc}", file=sys.stderr)
            return 2
    accounts = _accounts(config)
    if args.users_command == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        try:
            # A generated password is the server's, not the user's: changed at the first sign-in.
            password = accounts.add_user(args.name, args.role, password, must_change_password=password is None)
        except AccountError as exc:
            print(f"callguard: {exc}", file=sys.stderr)
            return 2
        print(f"created {args.role} {args.name}" + ("" if args.password_stdin else f"; password: {password}"))
        return 0
    if args.users_command in ACCOUNT_COMMANDS:
        return _account_command(accounts, args)
    for state in accounts.states():
        flags = [
            flag
            for flag, on in (
                ("disabled", state.disabled),
                ("locked", state.locked),
                ("must-change-password", state.must_change_password),
            )
            if on
        ]
        print(f"{state.name}\t{state.role}" + (f"\t{','.join(flags)}" if flags else ""))
    return 0


def _account_command(accounts: Accounts, args: argparse.Namespace) -> int:
    """unlock, disable, enable, reset-password, revoke: done, logged as cli:<os user>, said."""
    command, detail = args.users_command, {}
    try:
        if command == "unlock":
            name, action, said = accounts.unlock(args.name), "account_unlocked", "unlocked {}"
        elif command == "disable":
            name, action, said = accounts.disable(args.name), "account_disabled", "disabled {}; its sessions ended"
        elif command == "enable":
            name, action, said = accounts.enable(args.name), "account_enabled", "enabled {}"
        elif command == "revoke":
            name, detail["revoked"] = accounts.revoke(args.name)
            action, said = "sessions_revoked", f"ended {detail['revoked']} sessions of {{}}"
        else:
            given = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
            name, password = accounts.reset_password(args.name, given)
            action = "password_reset"
            said = "reset the password of {}; it must be changed at the next sign-in"
            if given is None:
                said += f"; password: {password}"
    except AccountError as exc:
        print(f"callguard: {exc}", file=sys.stderr)
        return 2
    who, role = cli_user()
    record_access(accounts.db, who, role, None, action, {"user": name, **detail})
    print(said.format(name))
    return 0


def _config(args: argparse.Namespace) -> int:
    if args.default:
        sys.stdout.write(DEFAULT_TOML.read_text(encoding="utf-8"))
        return 0
    if args.lists is not None:
        if args.lists.exists() and any(args.lists.iterdir()):
            print(f"callguard: {args.lists} is not empty; name a new folder", file=sys.stderr)
            return 2
        shutil.copytree(BUILTIN_LISTS, args.lists, dirs_exist_ok=True)
        print(f'copied the keyword lists into {args.lists}; set keywords.lists_dir = "{args.lists.resolve()}"')
        return 0
    print(f"config OK: {args.config or 'embedded defaults'}")
    return 0


def _models(args: argparse.Namespace, config: Config) -> int:
    from moderation import classifier, model_fetch, model_store

    if args.models_command == "pull":
        whisper = (model_store.WHISPER, config.stt.models_dir, "stt.model")
        bert = (classifier.KIND, config.classifier.models_dir, "classifier.model")
        if args.name:
            wanted = [(args.name, *(bert if args.classifier else whisper))]
        else:
            wanted = [(config.stt.model, *whisper)]
            if config.classifier.enabled and not model_store.looks_like_path(config.classifier.model):
                wanted.append((config.classifier.model, *bert))
        for name, kind, models_dir, key in wanted:
            try:
                label = f"fetching {kind.what} {name}"
                path = model_store.pull(name, models_dir, args.revision, kind, model_fetch.ConsoleProgress(label))
            except model_store.ModelUnavailable as exc:
                print(f"callguard: {exc}", file=sys.stderr)
                return 2
            print(f'pulled {name} into {path}; use it with {key} = "{name}"')
        return 0
    models_dir = config.stt.models_dir
    found = model_store.list_models(models_dir)
    if not found:
        print(f"no models in {models_dir}; fetch them with: callguard models pull")
    for info in found:
        state = "complete" if info.complete else "INCOMPLETE, missing " + ", ".join(info.missing)
        origin = f"  {info.repo_id}@{(info.revision or '')[:12]}" if info.repo_id else ""
        print(f"{info.name}\t{info.size_bytes / 1e6:.0f} MB\t{state}{origin}")
    return 0


def _stt_tier(config: Config) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from moderation.stt_tier import run_tier
    except ImportError as exc:  # ray[serve] is the `cluster` extra, not the core install
        print(f"callguard stt-tier: {exc}; pip install 'callguard[cluster]' adds it", file=sys.stderr)
        return 2
    classifier = config.classifier
    run_tier(config.stt, config.stt_tier, classifier if classifier.enabled and classifier.backend == "ray" else None)
    return 0


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, help="TOML file over the embedded defaults (callguard config --default prints them)"
    )


def _data_dir_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, help="the server's data folder, where the calls are logged (default: server.data_dir)"
    )


def _accounts(config: Config) -> Accounts:
    return accounts_for(connect(config.server.data_dir, config.database.url), config.auth)


def _serve(config: Config, reload_config: Callable[[], Config]) -> int:
    # The web app and the media stack (aiortc, PyAV) take a second or more to import; only
    # the server needs them, so the account and records commands answer without that wait.
    from relay.web import serving
    from relay.web.app import PathOnlyAccessLogger, build_app, ssl_context

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)  # one line per ICE check otherwise
    accounts = _accounts(config)
    if accounts.count() == 0:
        password = accounts.add_user("supervisor", "supervisor", must_change_password=True)
        print(
            "No accounts yet: created user 'supervisor' (role supervisor) with password\n"
            f"    {password}\n"
            "It is shown only this once and must be changed at the first sign-in.\n"
            "Add counselors with: callguard users add NAME --role counselor",
            flush=True,
        )
    context = ssl_context(config)
    scheme = "https" if context else "http"
    print(
        f"callguard listening on {scheme}://{config.server.host}:{config.server.port}/  "
        f"(delay {config.delay.delay_s} s)",
        flush=True,
    )
    try:
        app = build_app(config, reload_config)
    except ConfigError as exc:
        print(f"callguard: config error: {exc}", file=sys.stderr)
        return 2
    serving.run(app, config.server.host, config.server.port, context, PathOnlyAccessLogger)
    return 0


if __name__ == "__main__":
    sys.exit(main())
