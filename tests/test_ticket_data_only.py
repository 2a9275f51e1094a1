"""lottery_tf reads tickets as data: no command runs a ticket's graph.

A SavedModel's graph runs when TensorFlow loads it. A ticket crafted with a
file-writing op in its load path (its manifest recomputed, so every sha256
verifies) is loaded, transferred and exported by lottery_tf, and the file
never appears; plain ``tf.saved_model.load`` on the same ticket writes it.
"""
import json
import os
import shutil

import numpy as np
import pytest

from lottery_tf import tickets
from lottery_tf.tickets import format as ticket_format
from lottery_tf._keras import tf

FIND = ["find", "--dataset=digits", "--model=lenet_300_100",
        "--training_steps=2ep", "--batch_size=64", "--lr=0.05", "--levels=1",
        "--controls=", "--rewind=2it", "--seed=1"]


class _WritesAFile(tf.saved_model.experimental.TrackableResource):
  """A resource whose initializer, run by tf.saved_model.load, writes."""

  def __init__(self, path):
    self._target = path
    super().__init__()

  def _create_resource(self):
    return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[],
                                  shared_name="lottery_tf_test_payload")

  def _initialize(self):
    tf.io.write_file(self._target, "ran")
    return tf.raw_ops.AssignVariableOp(resource=self.resource_handle,
                                       value=tf.constant(0.0))


def _reseal(path):
  """Recomputes ticket.json's sha256s, as a forger would."""
  meta_path = os.path.join(path, tickets.TICKET_JSON)
  meta = json.load(open(meta_path))
  meta["files"] = ticket_format.file_hashes(path, tickets.TICKET_JSON)
  meta["manifest_sha256"] = ticket_format.manifest_digest(meta)
  with open(meta_path, "w") as f:
    json.dump(meta, f)


def _craft(ticket, dest, payload):
  """``ticket``'s variables and json in a SavedModel that writes ``payload``
  when loaded."""
  values = tickets.read_variables(ticket, "--ticket",
                                  tickets.read_meta(ticket))
  module = tf.Module()
  module.weights = {k: tf.Variable(v) for k, v in values["weights"].items()}
  module.masks = {k: tf.Variable(v) for k, v in values["masks"].items()}
  module.payload = _WritesAFile(payload)
  os.makedirs(os.path.join(dest, "assets"))
  shutil.copy(os.path.join(ticket, tickets.TICKET_JSON),
              os.path.join(dest, tickets.TICKET_JSON))
  tf.saved_model.save(module, os.path.join(dest, "sm"))
  for name in os.listdir(os.path.join(dest, "sm")):
    if name != "assets":
      shutil.move(os.path.join(dest, "sm", name), os.path.join(dest, name))
  shutil.rmtree(os.path.join(dest, "sm"))
  _reseal(dest)


@pytest.fixture(scope="module")
def ticket(tmp_path_factory):
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  from conftest import clean_env  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp("data_only")
  proc = subprocess.run(
      [sys.executable, "-m", "lottery_tf.cli.main", *FIND,
       f"--output_dir={root}/runs"], cwd=str(root), capture_output=True,
      text=True, timeout=600, env=clean_env())
  assert proc.returncode == 0, proc.stderr[-3000:]
  summary = proc.stdout.strip().splitlines()[-1].split("results: ")[1]
  return os.path.join(os.path.dirname(summary), "level_01", "ticket")


def test_crafted_ticket_runs_nothing(ticket, tmp_path, cli):
  crafted = str(tmp_path / "crafted")
  payload = str(tmp_path / "payload_ran")
  _craft(ticket, crafted, payload)
  # The crafted ticket verifies: its sha256s were recomputed.
  tickets.read_meta(crafted)
  # The test would catch a loader that runs the graph: TensorFlow's does.
  tf.saved_model.load(crafted)
  assert os.path.exists(payload)
  os.remove(payload)

  loaded = tickets.load(crafted)
  original = tickets.load(ticket)
  assert not os.path.exists(payload)
  for key, value in original.weights.items():
    np.testing.assert_array_equal(loaded.weights[key], value)
  for key, value in original.masks.items():
    np.testing.assert_array_equal(loaded.masks[key], value)

  proc = cli("transfer", f"--ticket={crafted}", "--dataset=digits",
             "--classes=5-9", "--training_steps=1ep", "--batch_size=64",
             "--transfer_controls=", "--output_dir=runs")
  assert proc.returncode == 0, proc.stderr[-3000:]
  proc = cli("export", f"--ticket={crafted}",
             f"--export_dir={tmp_path}/export")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert not os.path.exists(payload)
  with np.load(tmp_path / "export" / "weights.npz") as z:
    np.testing.assert_array_equal(z["fc1/kernel"],
                                  original.weights["fc1/kernel"])


def _one_line_exit_2(proc, *words):
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
  for word in words:
    assert word in lines[0], (word, lines[0])


def test_recorded_shapes_that_disagree_are_refused(ticket, tmp_path, cli):
  copy = str(tmp_path / "ticket")
  shutil.copytree(ticket, copy)
  meta_path = os.path.join(copy, tickets.TICKET_JSON)
  meta = json.load(open(meta_path))
  assert meta["shapes"]["weights"]["fc1/kernel"] == [64, 300]
  meta["shapes"]["weights"]["fc1/kernel"] = [64, 301]
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  _reseal(copy)
  proc = cli("export", f"--ticket={copy}", f"--export_dir={tmp_path}/out")
  _one_line_exit_2(proc, "--ticket", "fc1/kernel", "[64, 300]", "[64, 301]")
  assert not os.path.exists(tmp_path / "out" / "ticket")


def test_variables_that_do_not_fit_the_architecture_are_refused(
    ticket, tmp_path, cli):
  # The json claims another input size: lottery_tf's lenet_300_100 for it has
  # another fc1, and the ticket's variables do not fit it.
  copy = str(tmp_path / "ticket")
  shutil.copytree(ticket, copy)
  meta_path = os.path.join(copy, tickets.TICKET_JSON)
  meta = json.load(open(meta_path))
  meta["input_shape"] = [9, 9, 1]
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  _reseal(copy)
  proc = cli("transfer", f"--ticket={copy}", "--dataset=digits",
             "--training_steps=1ep", "--output_dir=runs")
  _one_line_exit_2(proc, "--ticket", "does not fit", "fc1/kernel")
  assert not os.path.exists(tmp_path / "runs")


def test_a_checkpoint_that_is_not_one_is_refused(ticket, tmp_path, cli):
  copy = str(tmp_path / "ticket")
  shutil.copytree(ticket, copy)
  index = os.path.join(copy, "variables", "variables.index")
  with open(index, "wb") as f:
    f.write(b"not a tensor bundle")
  _reseal(copy)
  proc = cli("export", f"--ticket={copy}", f"--export_dir={tmp_path}/out")
  _one_line_exit_2(proc, "--ticket", "cannot read the variables")


def test_trained_network_is_read_as_data(ticket, tmp_path):
  trained = os.path.join(os.path.dirname(ticket), "trained")
  weights = tickets.load_trained_weights(trained)
  assert weights["fc1/kernel"].shape == (64, 300)
  # A trained network's recorded shapes are checked as a ticket's are.
  copy = str(tmp_path / "trained")
  shutil.copytree(trained, copy)
  meta_path = os.path.join(copy, tickets.TRAINED_JSON)
  meta = json.load(open(meta_path))
  meta["shapes"]["weights"]["fc2/bias"] = [99]
  meta["files"] = ticket_format.file_hashes(copy, tickets.TRAINED_JSON)
  meta["manifest_sha256"] = ticket_format.manifest_digest(meta)
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="fc2/bias"):
    tickets.load_trained_weights(copy, "--transfer_weights")


def test_export_inside_the_ticket_or_onto_an_export_is_refused(
    ticket, tmp_path, cli):
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  loaded = tickets.load(ticket)
  with pytest.raises(UserError, match="inside the ticket"):
    tickets.export(loaded, os.path.join(ticket, "assets", "out"))
  out = str(tmp_path / "export")
  tickets.export(loaded, out)
  first = open(os.path.join(out, "export.json")).read()
  proc = cli("export", f"--ticket={ticket}", f"--export_dir={out}")
  _one_line_exit_2(proc, "--export_dir", "earlier export", "--overwrite")
  assert open(os.path.join(out, "export.json")).read() == first
  proc = cli("export", f"--ticket={ticket}", f"--export_dir={out}",
             "--overwrite")
  assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_ticket_json_without_its_schema_is_refused(ticket, tmp_path):
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  copy = str(tmp_path / "ticket")
  shutil.copytree(ticket, copy)
  meta_path = os.path.join(copy, tickets.TICKET_JSON)
  meta = json.load(open(meta_path))
  del meta["input_shape"]
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  _reseal(copy)
  with pytest.raises(UserError, match="has no 'input_shape'"):
    tickets.load(copy)
  meta["input_shape"], meta["format_version"] = [8, 8, 1], 99
  with open(meta_path, "w") as f:
    json.dump(meta, f)
  _reseal(copy)
  with pytest.raises(UserError, match="format_version 99"):
    tickets.load(copy)
