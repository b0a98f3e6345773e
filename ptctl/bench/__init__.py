"""``ptctl bench`` (``make bench``): the platform's figures, side by side, on a platform of
its own (free loopback ports, a temporary directory, everything stopped at the end).

1. PlaceOrder through the gateway against the same call through a second Envoy rendered
   with the same configuration whose upstreams are all a no-op gRPC server
   (:mod:`ptctl.bench.noop`): req/s, p50 and p99 at 1, 16 and 64 concurrent callers, and
   the platform/no-op ratio. The load comes from a process of its own
   (:mod:`ptctl.bench.load`), so that its CPU is not the bench's.
2. CPU ms per order of every platform process (each service replica, Envoy,
   nats-server) from ``/proc/<pid>/stat``, around the 16-caller PlaceOrder run: right
   after it ("during run") and once the downstream work has settled (status_svc's view
   holds the last order and the processes' CPU has stopped rising). Under --postgres
   the PostgreSQL backends serving the bench's databases count too (those alive at each
   sample: a backend that ended in between is missed). The load generator's own CPU is
   given apart.
3. OrderPlaced -> status_svc's view, open loop at fixed offered rates
   (:mod:`ptctl.bench.propagation` tells how "shows in the view" is observed).
4. The whole booking flow, many at once (:mod:`ptctl.bench.flow`): flows/s and the
   p50/p99 duration of a flow.
5. Memory: each process's VmRSS idle (after start-up and warm-up) and VmHWM after all
   the load.
6. With ``--profile``: one more 16-caller PlaceOrder run with py-spy attached to every
   service (:mod:`ptctl.bench.profile`), apart from the runs above so that sampling does
   not weigh on their figures: a flame graph per service.

Prints a progress bar on stderr, the table on stdout, and writes
``<out>/bench-<UTC timestamp>.json`` and ``.png`` plus ``latest.json`` and ``latest.png``.
``--postgres`` runs on fresh PostgreSQL databases (dropped afterwards) instead of SQLite.
``--tracing`` switches tracing on in every service, exporting to an OTLP receiver the
bench runs (:mod:`ptctl.otlp_sink`), and reports the spans it received.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="about 2 s per measurement (a smoke run, ~1 min)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="fresh PostgreSQL databases on 127.0.0.1:5432 (dropped afterwards), not SQLite",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("var/bench"), help="where the JSON and PNG go"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile each service with py-spy under 16 callers (flame graphs in --out)",
    )
    parser.add_argument(
        "--tracing",
        action="store_true",
        help="tracing on in every service (PT_TRACING=otlp), to an OTLP receiver of the bench's",
    )
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an environment variable for the services (repeatable; for A/B runs)",
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench", help="measure throughput, latency, CPU and memory on a platform of its own"
    )
    add_arguments(bench)
    bench.set_defaults(func=cmd_bench)


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def cmd_bench(args: argparse.Namespace) -> int:
    from ptctl.bench.run import BenchOptions, main

    # Ctrl-C and SIGTERM (a timeout, a kill) unwind the bench, whose ``finally`` stops every
    # child; SIGINT too when the shell that started it in the background ignored it.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, interrupt)

    service_env = {}
    for pair in args.service_env:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise SystemExit(f"--service-env wants KEY=VALUE, got {pair!r}")
        service_env[key] = value
    options = BenchOptions(
        quick=args.quick,
        postgres=args.postgres,
        out=args.out,
        service_env=service_env,
        profile=args.profile,
        tracing=args.tracing,
    )
    try:
        return main(options)
    except KeyboardInterrupt:
        sys.stderr.write("\nptctl bench: interrupted; everything it started is stopped\n")
        return 130
