"""The notebooks as files: committed without outputs, each with a goal, predictions, exercises and
solutions; in replay mode the measuring ones run with no server; the README's badges point at them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "notebooks").glob("0[0-8]_*.ipynb"))


def test_there_are_nine_lessons_and_a_dashboard():
    assert [p.name[:2] for p in LESSONS] == [f"0{i}" for i in range(9)]
    assert (ROOT / "notebooks" / "what_if_dashboard.ipynb").is_file()


@pytest.mark.parametrize("path", [*LESSONS, ROOT / "notebooks" / "what_if_dashboard.ipynb"], ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} has outputs"


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.stem)
def test_each_lesson_has_a_goal_predictions_exercises_and_solutions(path):
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "**Learning goal.**" in text
    assert "## Exercises" in text
    if path.stem != "00_start_here":
        assert "Predict first" in text
        assert any("solution" in c.metadata.get("tags", []) for c in nb.cells)
    else:
        assert "Solution" in text


@pytest.mark.parametrize("name", ["02_measure_the_real_apps", "03_simulated_vs_measured", "04_caching",
                                  "05_pools_and_the_database"])
def test_measuring_notebooks_run_in_replay_mode_without_servers(name, monkeypatch):
    """What a small Binder pod does: measured figures from datasets/runs, the model live."""
    from nbclient import NotebookClient

    monkeypatch.setenv("LAB_MODE", "replay")
    monkeypatch.setenv("LAB_SMOKE", "1")
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    printed = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    if name != "03_simulated_vs_measured":
        assert "skipped" not in printed, "a recorded run is missing"
    assert "Traceback" not in printed


def test_readme_badges_open_the_right_files_on_binder():
    readme = (ROOT / "README.md").read_text()
    repo = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"]
    slug = repo.removeprefix("https://github.com/")
    links = re.findall(r"\((https://mybinder\.org/v2/gh/[^)]+)\)", readme)
    assert len(links) == 2
    lab, voila = links
    assert lab.startswith(f"https://mybinder.org/v2/gh/{slug}/main?urlpath=lab/tree/")
    assert voila.startswith(f"https://mybinder.org/v2/gh/{slug}/main?urlpath=voila/render/")
    assert (ROOT / lab.split("lab/tree/", 1)[1]).is_file()
    assert (ROOT / voila.split("voila/render/", 1)[1]).is_file()
