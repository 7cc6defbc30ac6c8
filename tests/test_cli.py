"""latency-lab simulate: tables, JSON, sweeps, and one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from latency_lab.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "simulate", "--rate", "40", "--duration", "5", "--json", "--seed", "3")
    assert code == 0
    doc = json.loads(out)
    for key in ("throughput_rps", "p50_ms", "p95_ms", "p99_ms", "error_rate"):
        assert isinstance(doc[key], float), key
    assert doc["seed"] == 3 and doc["scenario"]["workload"]["rate_rps"] == 40.0


def test_replications_pool_runs_and_say_so(capsys):
    code, out, _ = run(capsys, "simulate", "--rate", "40", "--duration", "5", "--json", "--seed", "3",
                       "--replications", "4")
    doc = json.loads(out)
    assert code == 0 and doc["replications"] == 4
    single = [json.loads(run(capsys, "simulate", "--rate", "40", "--duration", "5", "--json", "--seed", str(s))[1])
              for s in (3, 4, 5, 6)]
    assert doc["requests"] == sum(d["requests"] for d in single)  # every run's requests, pooled
    assert doc["throughput_rps"] == pytest.approx(np.mean([d["throughput_rps"] for d in single]))
    code, out, _ = run(capsys, "simulate", "--rate", "40", "--duration", "5", "--replications", "4")
    assert "4 runs pooled, seeds 0-3" in out.splitlines()[0]


@pytest.mark.parametrize(("argv", "message"), [
    (["--replications", "0"], "replications must be a whole number >= 1, got 0"),
    (["--replications", "2", "--sweep", "rate=10,20"], "--replications pools runs of one scenario"),
])
def test_bad_replications_are_refused_by_name(capsys, argv, message):
    code, _, err = run(capsys, "simulate", "--duration", "3", *argv)
    assert code == 2 and message in err


def test_flags_reach_the_model(capsys):
    _, out, _ = run(capsys, "simulate", "--server", "threads", "--workers", "2", "--threads", "4", "--cpu-ms",
                    "exp:3", "--io-ms", "10", "--pool-size", "3", "--cache", "local", "--ttl-s", "30",
                    "--duration", "5", "--json")
    scenario = json.loads(out)["scenario"]
    assert scenario["server"]["model"] == "threads" and scenario["server"]["threads"] == 4
    assert scenario["workload"]["endpoints"][0]["cpu_ms"] == {"dist": "exponential", "mean": 3.0}
    assert scenario["backends"]["pool_size"] == 3 and scenario["backends"]["cache"] == "local"


def test_sweep_prints_one_row_per_point(capsys):
    code, out, _ = run(capsys, "simulate", "--sweep", "rate=10:50:10", "--duration", "3")
    lines = out.strip().splitlines()
    assert code == 0 and len(lines) == 1 + 5
    assert lines[1].split()[0] == "10.0" and lines[-1].split()[0] == "50.0"
    code, out, _ = run(capsys, "simulate", "--sweep", "workers=1,2", "--duration", "3", "--json")
    assert [p["workers"] for p in json.loads(out)] == [1, 2]


def test_scenario_file_and_flags_combine(capsys, tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[server]\nmodel = "threads"\nworkers = 2\nthreads = 8\n[workload]\nduration_s = 3.0\n')
    _, out, _ = run(capsys, "simulate", str(path), "--server", "async", "--json")
    server = json.loads(out)["scenario"]["server"]
    assert server["model"] == "async" and server["threads"] == 1 and server["workers"] == 2


@pytest.mark.parametrize("argv, words", [
    (["--workers", "0"], ["Server.workers", "[1, 1024]"]),
    (["--server", "gevent"], ["Server.model", "gevent"]),
    (["--rate", "-1"], ["Workload.rate_rps"]),
    (["--rate", "fast"], ["expected float", "fast"]),
    (["missing.toml"], ["scenario file not found: missing.toml"]),
    (["--sweep", "speed=1:2:1"], ["unknown knob 'speed'"]),
    (["--set", "wrokers=2"], ["unknown knob 'wrokers'"]),
    (["--workers", "90"], ["does not fit", "memory"]),
])
def test_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = run(capsys, "simulate", *argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    for word in words:
        assert word in err


def test_save_writes_a_loadable_run_and_refuses_to_overwrite(capsys, tmp_path):
    from simulator import Result

    code, _, _ = run(capsys, "simulate", "--duration", "3", "--save", str(tmp_path / "run"))
    assert code == 0 and Result.load(tmp_path / "run").summary.requests > 0
    code, _, err = run(capsys, "simulate", "--duration", "3", "--save", str(tmp_path / "run"))
    assert code == 2 and "refusing to overwrite" in err


def test_the_installed_console_script_runs():
    """The entry point pyproject.toml installs, beside this interpreter (make test installs it)."""
    exe = Path(sys.executable).parent / "latency-lab"
    assert exe.exists(), f"{exe} missing: install the project (pip install -e .) before testing"
    done = subprocess.run([str(exe), "simulate", "--duration", "2", "--json"], capture_output=True, text=True,
                          timeout=60, check=True)
    assert json.loads(done.stdout)["requests"] > 0


def test_a_closed_pipe_is_not_an_error():
    exe = Path(sys.executable).parent / "latency-lab"
    done = subprocess.run(f"'{exe}' simulate --sweep rate=10:200:10 --duration 2 | head -2", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr and len(done.stdout.splitlines()) == 2


@pytest.mark.parametrize("argv, words", [
    (["load", "http://127.0.0.1:1", "--rate", "5", "--duration", "1"], ["cannot reach http://127.0.0.1:1"]),
    (["load", "http://127.0.0.1:1", "--rate", "0"], ["Workload.rate_rps"]),
    (["load", "http://127.0.0.1:1", "--rate", "-3"], ["Workload.rate_rps"]),
    (["load", "http://127.0.0.1:1", "--endpoint", "nope"], ["unknown endpoint 'nope'"]),
    (["compare", "--rates", "10,x"], ["--rates takes numbers"]),
    (["measure", "--rate", "0"], ["Workload.rate_rps"]),
])
def test_load_measure_compare_bad_input_is_one_line_and_exit_2(capsys, argv, words):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    for word in words:
        assert word in err


def test_a_scenario_file_with_a_typo_names_the_key(capsys, tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text("[server]\nmodel = \"async\"\nworkrs = 2\n")
    for command in (["measure", str(path)], ["compare", str(path), "--rates", "10"], ["simulate", str(path)]):
        code, _out, err = run(capsys, *command)
        assert code == 2 and "unknown key(s) workrs" in err and str(path) in err
