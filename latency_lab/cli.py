"""``latency-lab``: the lab's command line.

    latency-lab simulate [SCENARIO.toml] [--server sync --workers 4 ...] [--sweep rate=10:200:10] [--json]
    latency-lab serve flask|fastapi [SCENARIO.toml] [--model sync|threads|async|threadpool|async-blocking] [...]

Both take the same knob flags, so a server runs exactly the scenario the model simulates.

Bad input exits with status 2 and one line naming the problem; nothing is
written unless ``--save`` is given, and then all or nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from simulator.analytic import predict
from simulator.distributions import Exponential, Fixed, LogNormal
from simulator.replicate import replicate
from simulator.scenario import ARRIVALS, CACHE_MODES, SERVER_MODELS, Scenario
from simulator.sweep import parse_sweep, sweep

__all__ = ["main"]

# flag -> knob; each flag's value is converted by the knob's own validation
_FLAGS: list[tuple[str, str, Any, str]] = [
    ("--server", "model", str, f"server model: {', '.join(SERVER_MODELS)}"),
    ("--workers", "workers", int, "worker processes (gunicorn or uvicorn --workers)"),
    ("--threads", "threads", int, "threads per worker (gunicorn gthread; --server threads)"),
    ("--limit-concurrency", "limit_concurrency", int, "uvicorn --limit-concurrency (503 past it)"),
    ("--arrival", "arrival", str, f"arrival process: {', '.join(ARRIVALS)}"),
    ("--rate", "rate_rps", float, "open-loop request rate, req/s"),
    ("--users", "users", int, "closed-loop users"),
    ("--think-time-s", "think_time_s", float, "closed-loop mean think time, s"),
    ("--duration", "duration_s", float, "measured seconds, after the warm-up"),
    ("--warmup", "warmup_s", float, "warm-up seconds, discarded"),
    ("--timeout-s", "timeout_s", float, "client timeout, s"),
    ("--cpu-ms", "cpu_ms", "dist", "handler CPU per request, ms (N, exp:N or lognormal:MEAN:CV)"),
    ("--io-ms", "io_ms", "dist", "DB wait per query, ms (N, exp:N or lognormal:MEAN:CV)"),
    ("--db-cpu-ms", "db_cpu_ms", "dist", "DB server CPU per query, ms"),
    ("--queries", "queries_per_request", int, "queries per request (the N+1 knob)"),
    ("--pool-size", "pool_size", int, "SQLAlchemy pool_size per process"),
    ("--max-overflow", "max_overflow", int, "SQLAlchemy max_overflow per process"),
    ("--pool-timeout-s", "pool_timeout_s", float, "SQLAlchemy pool_timeout, s"),
    ("--database", "database", str, "database: sqlite (embedded, the default) or postgresql (needs a URL)"),
    ("--cache", "cache", str, f"cache: {', '.join(CACHE_MODES)}"),
    ("--ttl-s", "ttl_s", float, "cache TTL, s"),
    ("--keys", "key_count", int, "distinct keys requested (Zipf popularity)"),
    ("--api-cores", "api_cores", int, "API server cores"),
    ("--db-cores", "db_cores", int, "DB server cores"),
]


class _Fail(Exception):
    """A user error: printed as one line, exit status 2."""


def _dist(text: str):
    parts = text.split(":")
    try:
        if len(parts) == 1:
            return Fixed(float(parts[0]))
        if parts[0] in ("exp", "exponential") and len(parts) == 2:
            return Exponential(float(parts[1]))
        if parts[0] == "lognormal" and len(parts) == 3:
            return LogNormal(float(parts[1]), float(parts[2]))
    except ValueError as exc:
        raise _Fail(f"bad distribution {text!r}: {exc}") from None
    raise _Fail(f"bad distribution {text!r}: use N (fixed), exp:MEAN or lognormal:MEAN:CV")


def _knob_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("scenario", nargs="?", help="scenario TOML file (datasets/scenarios/...)")
    for flag, knob, _kind, text in _FLAGS:
        aliases = [flag, "--model"] if flag == "--server" else [flag]
        parser.add_argument(*aliases, dest=knob, default=None, help=text)
    parser.add_argument("--set", action="append", default=[], metavar="KNOB=VALUE",
                        help="any other knob, e.g. --set nosql_write_units=500 (repeatable)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="latency-lab", description="Latency Lab: predict, then measure.")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="run the SimPy model of a scenario",
                         description="Simulate a scenario (a TOML file, flags, or both: flags win).")
    _knob_flags(sim)
    sim.add_argument("--seed", type=int, default=0, help="random seed (default 0): one seed, one answer")
    sim.add_argument("--replications", type=int, default=1, metavar="N",
                     help="pool N runs with seeds SEED, SEED+1, ... (default 1): the model's expected answer "
                          "for a run this long, as compare predicts with 4")
    sim.add_argument("--sweep", metavar="KNOB=START:STOP:STEP|A,B,C",
                     help="run one point per value, e.g. rate=10:200:10 or workers=1,2,4,8")
    sim.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sim.add_argument("--save", metavar="DIR", help="save the run (rows.csv + run.json) into DIR")
    sim.add_argument("--allow-overcommit", action="store_true",
                     help="run even if the scenario does not fit its hardware")
    srv = sub.add_parser("serve", help="run a lab app (Flask under gunicorn, FastAPI under uvicorn)",
                         description="Serve the API contract on 127.0.0.1 until Ctrl-C; every knob as in simulate.")
    srv.add_argument("app", choices=("flask", "fastapi"))
    _knob_flags(srv)
    srv.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 picks a free one)")
    srv.add_argument("--cpus", help="pin the app to these CPUs, e.g. 0 or 0,1 (Linux)")
    srv.add_argument("--database-url", help="postgresql://... (default: SQLite, or $DATABASE_URL)")
    srv.add_argument("--redis-url", help="redis://... (needed for --cache redis; default $REDIS_URL)")
    srv.add_argument("--root-path", default="",
                     help="the prefix a proxy serves the app under, e.g. /user/me/fastapi-app (FastAPI's /docs)")

    ld = sub.add_parser("load", help="send a scenario's load to a running server and measure it",
                        description="Open-loop (or closed-loop) load against URL on this machine.")
    ld.add_argument("url", help="the server, e.g. http://127.0.0.1:8000 (loopback only)")
    ld.add_argument("--rate", type=float, default=None, help="open-loop rate, req/s")
    ld.add_argument("--duration", type=float, default=None, help="measured seconds (after --warmup)")
    ld.add_argument("--warmup", type=float, default=None, help="warm-up seconds, discarded (default 5)")
    ld.add_argument("--closed", type=int, metavar="USERS", help="closed loop with USERS users instead")
    ld.add_argument("--think-time-s", type=float, default=None, help="closed-loop mean think time, s")
    ld.add_argument("--endpoint", action="append", help="endpoint(s) to load (default: indicator)")
    ld.add_argument("--cpus", help="pin the generator to these CPUs, e.g. 0")
    ld.add_argument("--seed", type=int, default=0)
    ld.add_argument("--save", metavar="DIR", help="save the run (rows written as they come)")
    ld.add_argument("--json", action="store_true")

    for name, text in (("measure", "start the scenario's app, send its load, stop everything, save the run"),
                       ("compare", "calibrate, then simulate and measure at each rate; a table and a report")):
        p = sub.add_parser(name, help=text, description=text)
        _knob_flags(p)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--json", action="store_true")
        p.add_argument("--database-url", help="postgresql://... for database = postgresql")
        p.add_argument("--redis-url", help="redis://... for cache = redis")
        if name == "measure":
            p.add_argument("--save", metavar="DIR", help="where to save the run (default runs/<time>-<model>)")
        else:
            p.add_argument("--rates", required=True, help="comma-separated rates, e.g. 20,40,60,80")
            p.add_argument("--calibration-rps", type=float, help="calibrate on one run at this rate "
                           "(default: three runs, at low load for the phase times, then at 60%% and 85%% "
                           "of the predicted capacity for the app's CPU)")
            p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report")
    return parser


def _convert(knob: str, kind: Any, text: str) -> Any:
    if kind == "dist":
        return _dist(text)
    try:
        return kind(text)
    except ValueError:
        raise _Fail(f"--{knob}: expected {kind.__name__}, got {text!r}") from None


def _scenario(args: argparse.Namespace) -> Scenario:
    scenario = Scenario.load(args.scenario) if args.scenario else Scenario()
    knobs: dict[str, Any] = {}
    for _flag, knob, kind, _text in _FLAGS:
        value = getattr(args, knob)
        if value is not None:
            knobs[knob] = _convert(knob, kind, value)
    for item in args.set:
        name, sep, text = item.partition("=")
        if not sep:
            raise _Fail(f"--set needs KNOB=VALUE, got {item!r}")
        current = Scenario().knob(name.strip())
        kind = "dist" if hasattr(current, "mean") else (type(current) if current is not None else int)
        knobs[name.strip()] = _convert(name, kind, text) if kind is not bool else text.lower() in ("1", "true", "yes")
    # a model switch away from threads resets threads, so --server async works on a gthread file
    if "model" in knobs and knobs["model"] != "threads" and "threads" not in knobs:
        knobs["threads"] = 1
    return scenario.with_knobs(**knobs) if knobs else scenario


_COLUMNS = [("throughput_rps", "req/s", "{:8.1f}"), ("p50_ms", "p50 ms", "{:8.1f}"), ("p95_ms", "p95 ms", "{:8.1f}"),
            ("p99_ms", "p99 ms", "{:8.1f}"), ("max_ms", "max ms", "{:8.1f}"), ("error_rate", "errors", "{:7.1%}")]


def _row(summary: dict[str, Any]) -> str:
    cells = []
    for key, _title, fmt in _COLUMNS:
        v = summary[key]
        cells.append(fmt.format(v) if v is not None and not (isinstance(v, float) and math.isnan(v))
                     else f"{'-':>{len(fmt.format(0.0))}}")
    u = summary["utilisation"]
    cells.append(" ".join(f"{u[k]:{w}.0%}" if math.isfinite(u[k]) else f"{'-':>{w}}"
                          for k, w in (("api_cpu", 6), ("workers", 8), ("db_cpu", 6))))
    return " ".join(cells)


def _header(first: str) -> str:
    titles = " ".join(f"{t:>8}" if k != "error_rate" else f"{t:>7}" for k, t, _ in _COLUMNS)
    return f"{first:>12} {titles} {'cpu':>6} {'workers':>8} {'db cpu':>6}"


def _cmd_simulate(args: argparse.Namespace) -> int:
    scenario = _scenario(args)
    if args.sweep:
        knob, values = parse_sweep(args.sweep)
        if args.save:
            raise _Fail("--save takes a single run; drop --sweep or --save")
        if args.replications != 1:
            raise _Fail("--replications pools runs of one scenario; for a sweep over seeds, drop --sweep")
        points = sweep(scenario, {knob: values}, seeds=[args.seed], allow_overcommit=args.allow_overcommit)
        if args.json:
            print(json.dumps([{knob: p.knobs[knob], **p.summary.to_dict()} for p in points], indent=2))
        else:
            print(_header(knob))
            for p in points:
                print(f"{p.knobs[knob]!s:>12} {_row(p.summary.to_dict())}")
        return 0
    result = replicate(scenario, replications=args.replications, seed=args.seed,
                       allow_overcommit=args.allow_overcommit)
    preview = predict(scenario)
    if args.save:
        result.save(args.save)
    summary = result.summary.to_dict()
    if args.json:
        doc = {**summary, "seed": args.seed, "replications": args.replications,
               "predicted": {"throughput_rps": preview.throughput_rps, "capacity_rps": preview.capacity_rps,
                             "mean_ms": _finite(preview.mean_ms), "p99_ms": _finite(preview.p99_ms),
                             "bottleneck": preview.bottleneck},
               "scenario": scenario.to_dict()}
        print(json.dumps(doc, indent=2))
        return 0
    s = scenario.server
    print(f"{s.model} x {s.workers} worker(s){f' x {s.threads} threads' if s.model == 'threads' else ''}, "
          f"{scenario.workload.arrival} load at {scenario.workload.rate_rps:g} req/s for "
          f"{scenario.workload.duration_s:g} s, "
          + (f"seed {args.seed}" if args.replications == 1 else
             f"{args.replications} runs pooled, seeds {args.seed}-{args.seed + args.replications - 1}"))
    print(_header("run"))
    print(f"{'simulated':>12} {_row(summary)}")
    print(f"analytic: capacity {preview.capacity_rps:.0f} req/s (bottleneck: {preview.bottleneck}), "
          f"mean {preview.mean_ms:.1f} ms" if preview.stable else
          f"analytic: overloaded, capacity {preview.capacity_rps:.0f} req/s (bottleneck: {preview.bottleneck})")
    if summary["cache_hit_ratio"] is not None:
        print(f"cache hit ratio {summary['cache_hit_ratio']:.1%}")
    for problem in result.meta.get("fit_problems", []):
        print(f"warning: {problem}")
    if args.save:
        print(f"saved to {args.save}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    import signal
    import time

    from lab_apps.launcher import start

    if args.model is None:  # each app's first model by default: Flask sync, FastAPI async
        args.model = "sync" if args.app == "flask" else "async"
    if args.database_url:  # the URL names the backend: the scenario's database knob follows it
        args.set.append("database=" + ("sqlite" if args.database_url.startswith("sqlite") else "postgresql"))
    scenario = _scenario(args)
    cpus = None
    if args.cpus:
        try:
            cpus = [int(c) for c in args.cpus.split(",")]
        except ValueError:
            raise _Fail(f"--cpus takes CPU numbers like 0,1; got {args.cpus!r}") from None
    if not 0 <= args.port <= 65535:
        raise _Fail(f"--port must be in [0, 65535], got {args.port}")
    server = start(args.app, scenario, port=args.port or None, cpus=cpus, database_url=args.database_url,
                   redis_url=args.redis_url, root_path=args.root_path)
    try:
        config = server.config()
        s = scenario.server
        print(f"{args.app} ({s.model} x {s.workers} worker(s)) on {server.url}  [database {config['database']}, "
              f"cache {scenario.backends.cache}, NoSQL {server.nosql_url}, cpus {config['process']['cpu_affinity']}]")
        if args.app == "fastapi":
            print(f"API docs: {server.url}/docs")
        print("Ctrl-C stops it and everything it started.", flush=True)
        # Ctrl-C and SIGTERM both stop everything, even where the shell started us
        # with SIGINT ignored (a background job), when Python installs no handler.
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)
        while server.process.poll() is None:
            time.sleep(0.5)
        print(f"the server exited with status {server.process.returncode}; its log: {server.workdir}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        server.stop()


def _print_measured(result, as_json: bool) -> None:
    if as_json:
        g = result.meta["generator"]
        print(json.dumps({**result.summary.to_dict(), "seed": result.seed, "unreliable": result.meta["unreliable"],
                          "partial": result.meta["partial"], "generator": g,
                          "app_cpu_ms_per_request": result.meta.get("app_cpu_ms_per_request")}, indent=2))
        return
    print(_header("run"))
    print(f"{'measured':>12} {_row({**result.summary.to_dict(), 'utilisation': _NO_UTIL})}")
    g = result.meta["generator"]
    print(f"p99 without the coordinated-omission correction: {result.summary.p99_uncorrected_ms:.1f} ms; "
          f"generator lag p99 {g['lag']['p99_ms']:.1f} ms, CPU {g['cpu_share']:.0%} of a core, "
          f"CPUs {g['cpu_affinity']}")
    for reason in result.meta["unreliable"]:
        print(f"UNRELIABLE: {reason}")
    if result.meta["partial"]:
        print(f"PARTIAL: {result.meta['partial']}")


_NO_UTIL = {"api_cpu": math.nan, "workers": math.nan, "db_cpu": math.nan}


def _cmd_load(args: argparse.Namespace) -> int:
    from lab_apps.loadgen import load
    from simulator.scenario import REFERENCE_ENDPOINTS

    knobs: dict[str, Any] = {}
    if args.closed is not None:
        knobs.update(arrival="closed", users=args.closed)
    for flag, knob in (("rate", "rate_rps"), ("duration", "duration_s"), ("warmup", "warmup_s"),
                       ("think_time_s", "think_time_s")):
        if getattr(args, flag) is not None:
            knobs[knob] = getattr(args, flag)
    scenario = Scenario().with_knobs(**knobs)
    if args.endpoint:
        unknown = [e for e in args.endpoint if e not in REFERENCE_ENDPOINTS]
        if unknown:
            raise _Fail(f"unknown endpoint {unknown[0]!r}; endpoints: {', '.join(REFERENCE_ENDPOINTS)}")
        from dataclasses import replace

        scenario = replace(scenario, workload=replace(scenario.workload, endpoints=tuple(
            REFERENCE_ENDPOINTS[e] for e in args.endpoint)))
    cpus = [int(c) for c in args.cpus.split(",")] if args.cpus else None
    record = (args.save.rstrip("/") + ".partial.csv") if args.save else None
    result = load(args.url, scenario, seed=args.seed, cpus=cpus, record_to=record,
                  meta={"command": "load"})
    if args.save:
        result.save(args.save)
        os.unlink(record)
    _print_measured(result, args.json)
    return 0 if not result.meta["partial"] else 1


def _cmd_measure(args: argparse.Namespace) -> int:
    import time

    from lab_apps.measure import measure

    scenario = _scenario(args)
    save = args.save or f"runs/{time.strftime('%Y%m%d-%H%M%S')}-{scenario.server.model}"
    result = measure(scenario, seed=args.seed, save_to=save, database_url=args.database_url,
                     redis_url=args.redis_url, progress="auto" if not args.json else None)
    _print_measured(result, args.json)
    if not args.json:
        print(f"app CPU {result.meta['app_cpu_ms_per_request']:.2f} ms per request on CPUs "
              f"{result.meta['app_cpu_affinity']}; saved to {save}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from lab_apps.compare import compare
    from lab_apps.measure import changes

    scenario = _scenario(args)
    try:
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
    except ValueError:
        raise _Fail(f"--rates takes numbers like 20,40,60; got {args.rates!r}") from None
    result = compare(scenario, rates, seed=args.seed, calibration_rps=args.calibration_rps,
                     database_url=args.database_url, redis_url=args.redis_url)
    if args.html:
        result.html(args.html)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
        return 0
    print(result._describe())
    print("  " + "\n  ".join(changes(scenario, result.calibrated)))
    print(result.table())
    if args.html:
        print(f"report: {args.html}")
    return 0


def _interrupt(_signum, _frame) -> None:
    raise KeyboardInterrupt


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        commands = {"simulate": _cmd_simulate, "serve": _cmd_serve, "load": _cmd_load,
                    "measure": _cmd_measure, "compare": _cmd_compare}
        return commands[args.command](args)
    except (_Fail, ValueError, FileExistsError, RuntimeError) as exc:
        print(f"latency-lab {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `latency-lab ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
