"""``python -m ptctl.bench``: the same as ``ptctl bench``."""

from __future__ import annotations

import argparse

from ptctl.bench import add_arguments, cmd_bench


def main() -> int:
    parser = argparse.ArgumentParser(prog="ptctl bench", description=__doc__)
    add_arguments(parser)
    return cmd_bench(parser.parse_args())


if __name__ == "__main__":
    raise SystemExit(main())
