"""The Python API (lottery_tf.api, exported by lottery_tf): the commands as
functions with the flags as keywords, returning a Result."""
import json
import os

import pandas as pd
import pytest

import lottery_tf as lt
from conftest import run_cli_in_process

FIND = dict(dataset="digits", model="lenet_300_100", levels=1,
            training_steps="1ep", batch_size=64, controls="reinit", seed=3)


@pytest.fixture(scope="module")
def found(tmp_path_factory):
  out = str(tmp_path_factory.mktemp("api"))
  return out, lt.find(output_dir=out, quiet=True, **FIND)


def test_the_public_surface_is_documented_and_lazy():
  for name in ("find", "train", "transfer", "grid", "score", "lmc", "diet",
               "export", "Result", "load_ticket", "UserError", "keras", "tf"):
    assert name in lt.__all__, name
    assert f"``{name}``" in lt.__doc__ or name in lt.__doc__, name
    assert getattr(lt, name) is not None
  assert issubclass(lt.UserError, ValueError)


def test_find_returns_its_experiment_summary_tickets_and_figures(found):
  out, r = found
  assert isinstance(r, lt.Result) and r.command == "find"
  assert os.path.dirname(r.directory) == out
  assert os.path.basename(r.directory).startswith("find_lenet_300_100_digits")
  table = r.summary
  assert isinstance(table, pd.DataFrame)
  assert {"level", "run", "density", "test_accuracy", "seed", "replicate",
          "experiment"} <= set(table.columns)
  assert sorted(zip(table["level"], table["run"])) == [
      (0, "ticket"), (1, "reinit"), (1, "ticket")]
  assert set(table["seed"]) == {3}
  assert r.hparams["seed"] == 3
  assert r.levels() == [0, 1]
  last = r.ticket()
  assert last.meta["level"] == 1 and r.ticket(0).meta["level"] == 0
  assert last.meta["density"] == pytest.approx(0.8, abs=1e-3)
  assert set(last.masks) and last.build().output_shape == (None, 10)
  with pytest.raises(ValueError, match="level 7"):
    r.ticket(7)
  assert [os.path.basename(p) for p in r.figures] == [
      "accuracy_vs_density.png"]
  assert all(os.path.getsize(p) > 0 for p in r.figures)
  # The same Result, read again from its path.
  again = lt.Result("find", r.path)
  pd.testing.assert_frame_equal(again.summary, table)


def test_a_call_is_the_command_with_the_same_flags(found):
  out, r = found
  argv = [f"--{k}={v}" for k, v in FIND.items()]
  code, stdout, err = run_cli_in_process(["find", f"--output_dir={out}",
                                          *argv])
  assert code == 0, err
  # Same experiment (names and defaults agree), found done: nothing reruns.
  assert stdout.strip().splitlines()[-1] == f"results: {r.path}"
  # And the API call again resumes to the same result.
  assert lt.find(output_dir=out, quiet=True, **FIND).path == r.path


def test_bad_keywords_and_values_raise_value_error_naming_them(found):
  out, _ = found
  with pytest.raises(ValueError, match="'levles'"):
    lt.find(output_dir=out, levles=3)
  with pytest.raises(ValueError, match="'levels'"):
    lt.train(output_dir=out, levels=1)       # a find flag, not train's
  with pytest.raises(ValueError, match="--levels"):
    lt.find(output_dir=out, levels=-1)
  with pytest.raises(ValueError, match="--dataset"):
    lt.find(output_dir=out, dataset="no_such_data")
  with pytest.raises(ValueError, match="--warmup_steps"):
    lt.find(output_dir=out, warmup_steps="soon")
  with pytest.raises(ValueError, match="--preset"):
    lt.find(output_dir=out, preset="no_such_preset")
  # Nothing was written for the refused calls.
  assert len(os.listdir(out)) == 1


def test_transfer_takes_a_ticket_and_train_a_recipe(found):
  out, r = found
  t = lt.transfer(ticket=r.ticket(1), dataset="digits", optimizer="adam",
                  lr=1e-3, training_steps="1ep", transfer_controls="",
                  output_dir=out, quiet=True)
  assert t.command == "transfer" and t.path.endswith("transfer.json")
  rows = t.summary
  assert list(rows["run"]) == ["transfer"]
  assert rows["density"][0] == pytest.approx(0.8, abs=0.01)
  assert 0 <= rows["test_accuracy"][0] <= 1
  assert not [c for c in rows.columns if c.startswith("versions.")]
  with pytest.raises(ValueError, match="no tickets"):
    t.ticket()
  d = lt.train(dataset="digits", model="lenet_300_100", training_steps="1ep",
               output_dir=out, quiet=True)
  assert d.path.endswith("metrics.json")
  assert 0 <= d.summary["test_accuracy"][0] <= 1
  assert callable(lt.transfer) and hasattr(lt.transfer, "TransferRunner")


def test_a_transfer_summary_names_each_run_by_its_kind(tmp_path):
  # A dense control's own metrics (the target IMP's level 0) say "ticket".
  path = tmp_path / "transfer.json"
  path.write_text(json.dumps({"runs": {
      "transfer": {"density": 0.1, "metrics": {"test_accuracy": 0.8}},
      "dense": {"run": "ticket", "density": 1.0,
                "metrics": {"test_accuracy": 0.9},
                "versions": {"tensorflow": "2"}}}}))
  rows = lt.Result("transfer", str(path)).summary
  assert list(rows["run"]) == ["transfer", "dense"]
  assert list(rows["test_accuracy"]) == [0.8, 0.9]
  assert "versions.tensorflow" not in rows.columns


def test_commands_named_like_subpackages_are_both():
  import subprocess  # pylint: disable=g-import-not-at-top
  import sys  # pylint: disable=g-import-not-at-top
  code = ("import lottery_tf as lt\n"
          "f = lt.transfer; d = lt.diet\n"
          "from lottery_tf import transfer, diet\n"
          "assert transfer is f and diet is d, (transfer, diet)\n"
          "assert callable(transfer) and hasattr(transfer, 'TransferRunner')\n"
          "assert callable(diet) and hasattr(diet, '__path__')\n"
          "try:\n"
          "  lt.transfer(bogus=1)\n"
          "except ValueError as e:\n"
          "  assert 'bogus' in str(e)\n"
          "else:\n"
          "  raise SystemExit('no ValueError')\n")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                        text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]


def test_a_flagfile_keyword_is_read_first_and_keywords_override_it(
    found, tmp_path):
  out, r = found
  flagfile = tmp_path / "recipe.cfg"
  flagfile.write_text("".join(f"--{k}={v}\n" for k, v in
                              dict(FIND, levels=5, seed=9).items()))
  # levels and seed given as keywords win over the file's, whatever their
  # order: the same experiment, found done.
  again = lt.find(seed=3, flagfile=str(flagfile), levels=1, output_dir=out,
                  quiet=True)
  assert again.path == r.path


def test_scores_read_as_a_table_by_example(found, tmp_path):
  out, r = found
  s = lt.score(dataset="digits", model="lenet_300_100", score="el2n",
               ensemble_size=2, score_steps="3it", batch_size=64,
               output_dir=str(tmp_path), quiet=True)
  table = s.scores()
  assert list(table.columns) == ["label", "el2n", "member_0", "member_1"]
  assert len(table) == 1437 and table.index.name == "example"
  assert table["label"].between(0, 9).all()
  assert (table.groupby("label").size() > 100).all()
  assert (table[["member_0", "member_1"]].mean(axis=1)
          - table["el2n"]).abs().max() < 1e-5
  with pytest.raises(ValueError, match="no scores"):
    r.scores()


def test_a_call_gives_back_the_callers_log_levels(found):
  from absl import logging  # pylint: disable=g-import-not-at-top
  out, r = found
  tf_logger = lt.tf.get_logger()
  before = logging.get_verbosity(), tf_logger.level
  try:
    logging.set_verbosity(logging.DEBUG)
    tf_logger.setLevel("INFO")
    assert lt.find(output_dir=out, quiet=True, **FIND).path == r.path
    assert logging.get_verbosity() == logging.DEBUG
    assert tf_logger.level == lt.tf.compat.v1.logging.INFO
  finally:
    logging.set_verbosity(before[0])
    tf_logger.setLevel(before[1])
