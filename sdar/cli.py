"""`sdar-bench`: the command-line contract every Snakemake rule calls (STYLE.md rule 7).

Each verb lives in its own module that defines `register(subparsers)`; a verb is listed here only once it
works. Errors of configuration or input (`ConfigError`, missing data) print one clear line and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sdar.configlib import ConfigError

# The closed set of verbs: module that registers each one.
COMMANDS: tuple[str, ...] = (
    "sdar.commands.models",
    "sdar.commands.serve_retriever",
    "sdar.commands.methods",
    "sdar.commands.envs",
    "sdar.commands.train",
    "sdar.commands.warmstart",
    "sdar.commands.report",
)


# Runtime failures whose message says everything (no traceback): NaN/inf guard, retrieval server down, ...
CLEAR_ERRORS = (
    "NonFiniteLossError",
    "RetrievalError",
    "SearchQAError",
    "SkillLibraryError",
    "UnknownEnvError",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sdar-bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"sdar-bench: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"sdar-bench: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # errors the suite raises on purpose carry their own clear message
        if type(err).__name__ in CLEAR_ERRORS:
            print(f"sdar-bench: error: {err}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
