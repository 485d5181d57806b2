"""Run every benchmark and print the figures against their targets (``make bench``).

    python benchmarks/run.py [--quick] [--profile] [--json PATH] [--dir DIR]

``--quick`` shrinks every benchmark (a smoke run: the figures are noisier); ``--profile`` adds a
cProfile of the command path; ``--json`` also writes the raw results; ``--dir`` chooses where the
SQLite files go (default: the system temporary directory; its file system is reported).

These are run by hand, not in CI: timings depend on the machine, and CI machines are noisy.
docs/performance.md records a run and explains the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_core
import bench_sqlite


def _row(name: str, value: str, target: str, ok: bool | None) -> str:
    verdict = "" if ok is None else ("met" if ok else "MISSED")
    return f"| {name} | {value} | {target} | {verdict} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (smoke test)")
    parser.add_argument("--profile", action="store_true", help="cProfile the command path")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--dir", help="directory for the SQLite files")
    args = parser.parse_args(argv)
    q = args.quick

    results: dict[str, Any] = {"machine": bench_core.machine()}
    print("machine:", ", ".join(f"{k} {v}" for k, v in results["machine"].items()), flush=True)
    steps = [
        ("command_path", lambda: bench_core.command_path(batches=8 if q else 40)),
        ("sealing", lambda: bench_core.sealing_cost(batches=4 if q else 20)),
        ("memory", lambda: bench_core.memory_per_case(n=2000 if q else 10_000)),
        (
            "open_growth",
            lambda: bench_core.open_growth(n=4000 if q else 20_000, window=500 if q else 1000),
        ),
        (
            "sqlite_durable",
            lambda: bench_sqlite.durable_command(args.dir, rounds=4 if q else 10, per_round=50),
        ),
        (
            "replay_verify",
            lambda: bench_sqlite.replay_verify(100 if q else 1000, 100, directory=args.dir),
        ),
    ]
    for name, fn in steps:
        start = time.perf_counter()
        results[name] = fn()
        print(f"  {name}: done in {time.perf_counter() - start:.1f} s", flush=True)

    c, m, g = results["command_path"], results["memory"], results["open_growth"]
    s, r = results["sqlite_durable"], results["replay_verify"]
    rows = [
        "| measure | value | target | |",
        "|---|---|---|---|",
        _row(
            "command, in memory (µs, median)",
            f"{c['command_us']:.2f}",
            "≤ 15",
            c["command_us"] <= 15,
        ),
        _row("bare `transitions` trigger (µs, median)", f"{c['bare_trigger_us']:.2f}", "", None),
        _row("command / bare trigger", f"{c['ratio']:.2f}×", "≤ 2.5×", c["ratio"] <= 2.5),
        _row(
            "command with its text sealed / sealing off (µs, medians)",
            f"{results['sealing']['sealed_command_us']:.1f} / "
            f"{results['sealing']['plain_command_us']:.1f} "
            f"({results['sealing']['ratio']:.2f}×)",
            "",
            None,
        ),
        _row(
            "a mediator's view of a case of 7 events, sealed values opened (µs)",
            f"{results['sealing']['mediator_view_us']:.0f}",
            "",
            None,
        ),
        _row(
            f"memory per open case, beyond its data (bytes; {m['cases']:,} cases)",
            f"{m['beyond_data_bytes']:.0f}",
            "≤ 2048",
            m["beyond_data_bytes"] <= 2048,
        ),
        _row("  the case's data (party dicts and their text)", f"{m['data_bytes']:.0f}", "", None),
        _row("  total per case", f"{m['per_case_bytes']:.0f}", "", None),
        *(
            _row(
                f"open, {label}: last {g['window']:,} of {g['cases']:,} vs first {g['window']:,}"
                " (µs, medians)",
                f"{g[key]['last_us']:.1f} vs {g[key]['first_us']:.1f} ({g[key]['ratio']:.2f}×)",
                "equal",
                g[key]["ratio"] <= 1.1,
            )
            for key, label in (
                ("default_cache", "default cache of 10,000"),
                ("cache_holds_all", "cache holding every case"),
            )
        ),
        _row(
            "`len(MACHINE.models)` after all opens",
            str(g["machine_models"]),
            "0",
            g["machine_models"] == 0 and m["machine_models"] == 0,
        ),
        _row("SQLite durable command (ms, median)", f"{s['service_ms']:.3f}", "", None),
        _row(
            "raw single-row INSERT transaction (ms, median)", f"{s['raw_insert_ms']:.3f}", "", None
        ),
        _row("durable command / raw INSERT", f"{s['ratio']:.2f}×", "≤ 1.3×", s["ratio"] <= 1.3),
        _row(
            f"replay + verify from SQLite, per case ({r['events']:,} events, events/s)",
            f"{r['read_verify_per_case_eps']:,.0f}",
            "≥ 200,000",
            r["read_verify_per_case_eps"] >= 200_000,
        ),
        _row("  the same by one ordered scan (events/s)", f"{r['scan_verify_eps']:,.0f}", "", None),
        _row(
            "  verify only, records in memory (events/s)", f"{r['verify_only_eps']:,.0f}", "", None
        ),
        _row(
            "  reference: rfc8785 + hashlib on the same bodies, in memory (events/s)",
            "—" if r["reference_eps"] is None else f"{r['reference_eps']:,.0f}",
            "",
            None,
        ),
    ]
    print()
    print("\n".join(rows))
    print(f"\nSQLite files on {s['filesystem']}; durable rows of {s['row_bytes']} bytes.")
    if args.profile:
        print("\ncProfile of the command path (RecordMinutes, MemoryStore), by own time:\n")
        print(bench_core.profile_command(n=10_000 if q else 50_000))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
