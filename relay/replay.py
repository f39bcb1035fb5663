"""`callguard replay CALL_ID`: moderation re-run over a logged call under another config."""

from __future__ import annotations

import argparse

from .config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace, config: Config) -> int:
    raise NotImplementedError("being written")
