"""The bench's figures as a plain text table, a JSON file and a PNG chart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

Result = dict[str, Any]


def table(result: Result) -> str:
    meta = result["meta"]
    lines = [
        f"ptctl bench ({meta['mode']}, {meta['database']}, commit {meta['commit']},"
        f" {meta['started_at']}; load average {meta['loadavg_before'][0]:.1f} before,"
        f" {meta['loadavg_after'][0]:.1f} after, {meta['cpus']} CPUs)",
        "",
        "PlaceOrder through the gateway: platform vs no-op upstream (same Envoy config)",
        f"  {'clients':>7} {'platform/s':>11} {'p50 ms':>8} {'p99 ms':>8}"
        f" {'no-op/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'errors':>7}",
    ]
    for row in result["place_order"]:
        platform, noop = row["platform"], row["noop"]
        errors = sum(platform["errors"].values()) + sum(noop["errors"].values())
        lines.append(
            f"  {row['concurrency']:>7} {platform['rps']:>11.1f} {platform['p50_ms']:>8.1f}"
            f" {platform['p99_ms']:>8.1f} {noop['rps']:>9.1f} {noop['p50_ms']:>8.1f}"
            f" {noop['p99_ms']:>8.1f} {row['ratio']:>6.2f} {errors:>7}"
        )
    cpu = result["cpu_per_order"]
    lines += [
        "",
        f"CPU ms per order ({cpu['orders']} orders at concurrency {cpu['concurrency']};"
        f" settled after {cpu['settle_s']:.1f} s)",
        f"  {'process':<14} {'during run':>10} {'settled':>9}",
    ]
    for name, figures in cpu["processes"].items():
        lines.append(f"  {name:<14} {figures['run_ms']:>10.3f} {figures['settled_ms']:>9.3f}")
    lines.append(f"  {'sum':<14} {cpu['sum_run_ms']:>10.3f} {cpu['sum_settled_ms']:>9.3f}")
    lines.append(f"  {'(load gen)':<14} {cpu['load_generator_ms']:>10.3f}")
    lines += [
        "",
        "OrderPlaced -> status_svc's view, open loop (ms after PlaceOrder answered)",
        f"  {'rate/s':>6} {'got/s':>6} {'place p50':>9} {'seen':>6} {'missing':>7}"
        f" {'p50':>7} {'p95':>7} {'p99':>7}"
        f" {'1st 20%':>7} {'last 20%':>8} {'drain s':>7} {'errors':>6} bounded kept up",
    ]
    for row in result["propagation"]:
        lines.append(
            f"  {row['rate']:>6.0f} {row['achieved_rate']:>6.1f}"
            f" {row['load'].get('place_p50_ms', 0.0):>9.1f} {row['seen']:>6} {row['missing']:>7}"
            f" {row['p50_ms']:>7.1f}"
            f" {row['p95_ms']:>7.1f} {row['p99_ms']:>7.1f} {row['first_fifth_p50_ms']:>7.1f}"
            f" {row['last_fifth_p50_ms']:>8.1f} {row['drain_s']:>7.2f}"
            f" {sum(row['load'].get('errors', {}).values()):>6}"
            f" {'yes' if row['bounded'] else 'NO':>7} {'yes' if row['kept_up'] else 'NO':>7}"
        )
    flow = result["flow"]
    failures = ", ".join(f"{k} {v}" for k, v in flow["failures"].items()) or "none"
    lines += [
        "",
        f"Whole flow (place, assign, confirm, result, notification), {flow['in_flight']} in flight",
        f"  {flow['completed']}/{flow['flows']} flows in {flow['elapsed_s']:.1f} s:"
        f" {flow['flows_per_s']:.1f} flows/s, p50 {flow['p50_ms']:.0f} ms,"
        f" p99 {flow['p99_ms']:.0f} ms; {flow['retries']} retried calls; failures: {failures}",
        "",
        "Memory (MiB)",
        f"  {'process':<14} {'idle RSS':>9} {'peak (HWM)':>10}",
    ]
    for name, figures in result["memory"].items():
        lines.append(
            f"  {name:<14} {figures['idle_rss_mib']:>9.1f} {figures['peak_hwm_mib']:>10.1f}"
        )
    return "\n".join(lines)


def chart(result: Result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ((rps, cpu), (lag, memory)) = plt.subplots(2, 2, figsize=(13, 9))
    meta = result["meta"]
    figure.suptitle(f"ptctl bench: {meta['mode']}, {meta['database']}, {meta['commit']}")

    rows = result["place_order"]
    labels = [str(row["concurrency"]) for row in rows]
    positions = range(len(rows))
    rps.bar(
        [p - 0.2 for p in positions], [r["platform"]["rps"] for r in rows], 0.4, label="platform"
    )
    rps.bar([p + 0.2 for p in positions], [r["noop"]["rps"] for r in rows], 0.4, label="no-op")
    rps.set_xticks(list(positions), labels)
    rps.set(title="PlaceOrder req/s via gateway", xlabel="concurrent callers", ylabel="req/s")
    rps.legend()

    processes = result["cpu_per_order"]["processes"]
    cpu.barh(list(processes), [f["settled_ms"] for f in processes.values()])
    cpu.set(title="CPU ms per order (settled)", xlabel="ms")
    cpu.invert_yaxis()

    spread = result["propagation"]
    rates = [str(int(row["rate"])) for row in spread]
    for key in ("p50_ms", "p95_ms", "p99_ms"):
        lag.plot(rates, [row[key] for row in spread], marker="o", label=key.removesuffix("_ms"))
    lag.set(title="OrderPlaced -> status view", xlabel="offered orders/s", ylabel="ms (log)")
    lag.set_yscale("log")
    lag.legend()

    names = list(result["memory"])
    spots = range(len(names))
    memory.barh([s - 0.2 for s in spots], [result["memory"][n]["idle_rss_mib"] for n in names], 0.4)
    memory.barh([s + 0.2 for s in spots], [result["memory"][n]["peak_hwm_mib"] for n in names], 0.4)
    memory.set_yticks(list(spots), names)
    memory.invert_yaxis()
    memory.set(title="Memory: idle RSS and peak (MiB)", xlabel="MiB")
    memory.legend(["idle RSS", "peak"])

    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write(result: Result, out: Path) -> tuple[Path, Path]:
    """``bench-<timestamp>.json``/``.png`` in ``out``, copied to ``latest.json``/``.png``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = f"bench-{result['meta']['started_at']}"
    data, picture = out / f"{stem}.json", out / f"{stem}.png"
    data.write_text(json.dumps(result, indent=2) + "\n")
    chart(result, picture)
    shutil.copyfile(data, out / "latest.json")
    shutil.copyfile(picture, out / "latest.png")
    return data, picture
