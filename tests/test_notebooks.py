"""The notebooks in notebooks/ run top to bottom and are saved without outputs.

Each notebook runs in a fresh kernel of this interpreter, in a scratch
working directory, without TF_USE_LEGACY_KERAS in its environment (its first
cell must set it), and must write its results under ``notebook_runs/``.
"""
import glob
import json
import os
import re
import sys

import nbclient
import nbformat
import pytest

from conftest import REPO, clean_env

NOTEBOOK_DIR = os.path.join(REPO, "notebooks")
NOTEBOOKS = sorted(glob.glob(os.path.join(NOTEBOOK_DIR, "*.ipynb")))
EXPECTED = ("01_find_a_ticket.ipynb", "02_transfer_tickets.ipynb",
            "03_data_diet.ipynb", "04_your_own_keras_model.ipynb")
CELL_TIMEOUT = 300
# `lottery_tf find --flagfile=flags/demo_mnist5k.cfg`, etc.
SCALE_UP = re.compile(
    r"lottery_tf (find|grid|transfer|diet|score|lmc) --flagfile=(flags/[\w.-]+\.cfg)")
FLAGFILE = re.compile(r"flags/[\w.-]+\.cfg")


def _read(path):
  return nbformat.read(path, as_version=4)


def _code(nb):
  return [c for c in nb.cells if c.cell_type == "code"]


def _ids(paths):
  return [os.path.basename(p) for p in paths]


def _internal_names(source: str):
  """What a cell reaches of lottery_tf that is not its public surface."""
  import lottery_tf  # pylint: disable=g-import-not-at-top
  public = set(lottery_tf.__all__)
  found = re.findall(r"^\s*(?:from|import) lottery_tf\.[\w.]+", source, re.M)
  for names in re.findall(r"^\s*from lottery_tf import ([\w, ()]+)", source,
                          re.M):
    found += [n for n in re.findall(r"\w+", names) if n not in public]
  body = re.sub(r"^\s*(from|import) .*$", "", source, flags=re.M)
  for alias in set(re.findall(r"^\s*import lottery_tf as (\w+)", source, re.M)
                   ) | {"lottery_tf"}:
    found += [n for n in re.findall(rf"\b{alias}\.(\w+)", body)
              if n not in public]
  return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_uses_only_the_public_api(path):
  text = "\n".join(c.source for c in _code(_read(path)))
  assert not _internal_names(text)


def test_the_public_api_check_finds_internal_names():
  assert _internal_names("from lottery_tf.lottery import report") == [
      "from lottery_tf.lottery"]
  assert _internal_names("from lottery_tf import paths, find") == ["paths"]
  assert _internal_names("import lottery_tf as lt\nlt.pruning.wrap(m)\n"
                         "lt.find(levels=1)\nlt.keras.wrap(m)") == ["pruning"]


def test_the_notebooks_exist():
  assert set(EXPECTED) <= set(_ids(NOTEBOOKS))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_saved_clean_and_ends_with_a_scale_up_command(path):
  nb = _read(path)
  nbformat.validate(nb)
  assert nb.metadata["kernelspec"]["name"] == "python3"
  for cell in _code(nb):
    assert cell.outputs == [], f"outputs saved in cell {cell.source[:60]!r}"
    assert cell.execution_count is None, cell.source[:60]
  first = _code(nb)[0].source
  legacy = first.find('os.environ["TF_USE_LEGACY_KERAS"] = "1"')
  imports = [m.start() for m in re.finditer(
      r"^\s*(import|from) (tensorflow|tf_keras|lottery_tf)", first, re.M)]
  assert legacy >= 0 and imports and legacy < min(imports), (
      "the first code cell must set TF_USE_LEGACY_KERAS before importing "
      "TensorFlow or lottery_tf")
  # Seeded: TensorFlow's own seed, or every command's --seed.
  assert "set_seed(" in first or re.search(r"\bseed=\d", first)
  assert "notebook_runs" in first
  last = nb.cells[-1]
  assert last.cell_type == "markdown"
  commands = SCALE_UP.findall(last.source)
  assert commands, "the last cell must give the command to scale up"
  # Every preset a notebook names exists.
  text = "\n".join(c.source for c in nb.cells)
  for flagfile in set(FLAGFILE.findall(text)):
    assert os.path.exists(os.path.join(REPO, flagfile)), flagfile


@pytest.fixture
def python3_kernel(tmp_path_factory, monkeypatch):
  """A `python3` kernelspec that runs this interpreter, found first."""
  root = tmp_path_factory.mktemp("jupyter")
  spec = root / "kernels" / "python3"
  spec.mkdir(parents=True)
  (spec / "kernel.json").write_text(json.dumps({
      "argv": [sys.executable, "-m", "ipykernel_launcher", "-f",
               "{connection_file}"],
      "display_name": "Python 3 (lottery_tf tests)", "language": "python"}))
  monkeypatch.setenv("JUPYTER_PATH", str(root))
  return "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_top_to_bottom(path, tmp_path, python3_kernel):
  nb = _read(path)
  client = nbclient.NotebookClient(
      nb, timeout=CELL_TIMEOUT, kernel_name=python3_kernel,
      resources={"metadata": {"path": str(tmp_path)}})
  # Raises CellExecutionError, with the cell and its traceback, on any error.
  client.execute(env=clean_env())
  name = os.path.splitext(os.path.basename(path))[0]
  out = tmp_path / "notebook_runs" / name
  assert out.is_dir() and any(out.iterdir()), (
      f"{name} wrote nothing under notebook_runs/{name}")
  assert sorted(os.listdir(tmp_path)) == ["notebook_runs"]
  # Figures are shown inline (lottery_tf's plotting switches matplotlib to
  # Agg, after which plt.show() would silently show nothing).
  images = sum("image/png" in o.get("data", {})
               for c in _code(nb) for o in c.outputs)
  assert images >= 2, f"{name} displayed {images} figures"
