"""`callguard calls export CALL_ID`: one call as a zip of evidence with a SHA-256 manifest."""

from __future__ import annotations

import argparse

from .config import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    pass


def main(args: argparse.Namespace, config: Config) -> int:
    raise NotImplementedError("being written")
