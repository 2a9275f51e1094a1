"""Ticket transfer: heads, weights under masks, Mehta's variants, controls, grid."""
import csv
import os
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from conftest import run_in_one_process
from lottery_tf import data, pruning, tickets
from lottery_tf.foundations import store
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf import paths
from lottery_tf.lottery.runner import LotteryRunner
from lottery_tf.lottery.task import Task
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.training.rewind import named_weights
from lottery_tf import transfer
from lottery_tf.transfer import runner as transfer_runner
from lottery_tf.transfer import grid as grid_lib
from lottery_tf.transfer.hparams import TransferHparams

SGD = TrainingHparams(lr=0.05, momentum=0.9, batch_size=64,
                      training_steps="2ep", seed=1)
ADAM = TrainingHparams(optimizer="adam", lr=1e-3, batch_size=64,
                       training_steps="2ep", seed=1)


def _find(root, thp, name):
  task = Task(DatasetHparams(dataset="mnist_5k", classes="0-4"),
              ModelHparams("lenet_300_100"), thp)
  exp = os.path.join(root, name)
  LotteryRunner(exp, task, PruningHparams(pruning_fraction=0.5),
                LotteryHparams(levels=2, rewind="3it", controls=""),
                quiet=True, log=lambda line: None).run()
  return os.path.join(paths.level(exp, 2), "ticket")


@pytest.fixture(scope="module")
def ticket_paths(tmp_path_factory):
  root = str(tmp_path_factory.mktemp("sources"))
  return {"sgd": _find(root, SGD, "sgd"), "adam": _find(root, ADAM, "adam")}


def _classifier_units(model):
  return transfer.classifier(model).units


def test_transfer_copies_everything_but_a_fresh_head(ticket_paths):
  ticket = tickets.load(ticket_paths["sgd"])
  assert ticket.meta["num_classes"] == 5
  info = data.info(transfer.target_data_hparams(
      DatasetHparams(dataset="digits"), ticket, TransferHparams()))
  assert info.input_shape == (28, 28, 1) and info.num_classes == 10
  assert any("28" in t for t in info.transforms)  # recorded, not silent
  model, masks = transfer.prepare(ticket, info, TransferHparams(), seed=5)
  assert _classifier_units(model) == 10
  weights = named_weights(model)
  for name, mask in ticket.masks.items():
    if name == "logits":
      continue
    np.testing.assert_array_equal(masks[name], mask)
    np.testing.assert_array_equal(pruning.get_masks(model)[name], mask)
    np.testing.assert_array_equal(weights[f"{name}/kernel"].numpy(),
                                  ticket.weights[f"{name}/kernel"] * mask)
  head = weights["logits/kernel"].numpy()
  assert head.shape == (100, 10)
  assert np.all(masks["logits"] == 1) and np.count_nonzero(head) == head.size
  # The ticket on disk is untouched by transfer.
  again = tickets.load(ticket_paths["sgd"])
  for name in ticket.masks:
    np.testing.assert_array_equal(again.masks[name], ticket.masks[name])


@pytest.mark.parametrize("dataset,classes", [("cifar100", 100),
                                             ("smallnorb", 5)])
def test_heads_take_the_target_class_count(ticket_paths, dataset, classes):
  ticket = tickets.load(ticket_paths["sgd"])
  with tfds.testing.mock_data(num_examples=8):
    dhp = transfer.target_data_hparams(DatasetHparams(dataset=dataset),
                                       ticket, TransferHparams())
    info = data.info(dhp)
    for head in ("linear", "mlp"):
      model, masks = transfer.prepare(ticket, info, TransferHparams(head=head),
                                      seed=0)
      assert _classifier_units(model) == classes
      assert masks["logits"].shape[-1] == classes
      batch = next(iter(data.load(dhp, "train", batch_size=4)))
      assert model(batch[0]).shape == (4, classes)
  assert info.input_shape == (28, 28, 1)


def test_random_head_mask_has_the_source_classifier_density(ticket_paths):
  ticket = tickets.load(ticket_paths["sgd"])
  info = data.info(DatasetHparams(dataset="mnist_5k"))
  _, masks = transfer.prepare(ticket, info, TransferHparams(head_mask="random"),
                              seed=0)
  assert masks["logits"].mean() == pytest.approx(
      ticket.masks["logits"].mean(), abs=0.01)
  assert masks["logits"].shape == (100, 10)


def test_mehta_weight_variants_and_conv_only(ticket_paths):
  ticket = tickets.load(ticket_paths["sgd"])
  info = data.info(DatasetHparams(dataset="mnist_5k"))
  trained = transfer.source_weights(ticket, "trained")
  init = transfer.source_weights(ticket, "init")
  for which, source in (("trained", trained), ("init", init)):
    model, masks = transfer.prepare(
        ticket, info, TransferHparams(transfer_weights=which), seed=0)
    np.testing.assert_array_equal(
        named_weights(model)["fc1/kernel"].numpy(),
        source["fc1/kernel"] * masks["fc1"])
  assert not np.array_equal(trained["fc1/kernel"], init["fc1/kernel"])
  model, masks = transfer.prepare(
      ticket, info, TransferHparams(transfer_weights="random"), seed=0)
  kernel = named_weights(model)["fc1/kernel"].numpy()
  assert not np.array_equal(kernel, init["fc1/kernel"] * masks["fc1"])
  assert np.all(kernel[masks["fc1"] == 0] == 0)
  # Mehta prunes conv layers only: dense layers of the ticket become dense.
  _, masks = transfer.prepare(ticket, info, TransferHparams(), seed=0,
                              prune_only="conv")
  assert all(np.all(m == 1) for m in masks.values())


@pytest.mark.parametrize("source,target", [("sgd", ADAM), ("adam", SGD),
                                           ("sgd", SGD)])
def test_optimizer_transfer_trains_and_keeps_pruned_weights_at_zero(
    ticket_paths, tmp_path, source, target):
  ticket = tickets.load(ticket_paths[source])
  runner = transfer.TransferRunner(
      str(tmp_path), ticket, DatasetHparams(dataset="mnist_5k", classes="5-9"),
      target, TransferHparams(transfer_controls="random_ticket"),
      quiet=True, log=lambda line: None)
  summary = store.read_json(runner.run())
  t = summary["runs"]["transfer"]
  assert t["num_classes"] == 5 and t["classifier_units"] == 5
  assert t["hparams"]["training"]["optimizer"] == target.optimizer
  assert summary["source"]["optimizer"] == source
  assert t["metrics"]["test_accuracy"] > 0.5
  assert t["density"] < 0.3
  r = summary["runs"]["random_ticket"]
  assert r["density_per_layer"] == pytest.approx(t["density_per_layer"],
                                                 abs=0.002)


def test_frozen_transfer_trains_only_the_head(ticket_paths, tmp_path):
  ticket = tickets.load(ticket_paths["sgd"])
  info = data.info(DatasetHparams(dataset="mnist_5k", classes="5-9"))
  trhp = TransferHparams(freeze_transferred=True, head="mlp")
  model, _ = transfer.prepare(ticket, info, trhp, seed=0)
  before = {k: v.numpy().copy() for k, v in named_weights(model).items()}
  task = Task(DatasetHparams(dataset="mnist_5k", classes="5-9"),
              ModelHparams("lenet_300_100"),
              SGD.replace(training_steps="20it"))
  transfer_runner._fit_and_eval(model, task, quiet=True)  # pylint: disable=protected-access
  after = {k: v.numpy() for k, v in named_weights(model).items()}
  for key in before:
    changed = not np.array_equal(before[key], after[key])
    assert changed == key.startswith(("logits", "head_fc1")), key


def test_controls_reuse_the_targets_own_find(ticket_paths, tmp_path):
  ticket = tickets.load(ticket_paths["sgd"])
  dhp = DatasetHparams(dataset="mnist_5k", classes="5-9")
  runner = transfer.TransferRunner(str(tmp_path), ticket, dhp, SGD,
                                   TransferHparams(), quiet=True,
                                   log=lambda line: None)
  summary = store.read_json(runner.run())
  own, dense = summary["runs"]["own_ticket"], summary["runs"]["dense"]
  assert own["level"] == 2 and dense["level"] == 0
  assert own["density"] == pytest.approx(summary["runs"]["transfer"]["density"],
                                         abs=0.01)
  assert own["experiment"] == dense["experiment"]
  mtime = os.path.getmtime(os.path.join(own["experiment"], "level_02",
                                        "metrics.json"))
  # A transfer from another level reuses (and extends) the same find.
  other = tickets.load(os.path.join(os.path.dirname(os.path.dirname(
      ticket_paths["sgd"])), "level_01", "ticket"))
  s2 = store.read_json(transfer.TransferRunner(
      str(tmp_path), other, dhp, SGD, TransferHparams(), quiet=True,
      log=lambda line: None).run())
  assert s2["runs"]["own_ticket"]["experiment"] == own["experiment"]
  assert os.path.getmtime(os.path.join(own["experiment"], "level_02",
                                       "metrics.json")) == mtime


def test_bad_transfers_exit_2_with_one_line(ticket_paths, tmp_path):
  good = ticket_paths["sgd"]
  tampered = str(tmp_path / "tampered")
  shutil.copytree(good, tampered)
  meta_path = os.path.join(tampered, "assets", "ticket.json")
  meta = store.read_json(meta_path)
  meta["level"] = 7  # provenance edited by hand
  store.write_json(meta_path, meta)
  cases = [
      (["--ticket=" + good, "--dataset=digits", "--noresize_to_ticket"],
       "--ticket"),
      (["--ticket=" + str(tmp_path / "missing"), "--dataset=digits"],
       "--ticket"),
      (["--ticket=" + tampered, "--dataset=digits"], "--ticket"),
      (["--ticket=" + good, "--dataset=mnist_5k", "--classes=3"], "--classes"),
      (["--ticket=" + good, "--dataset=digits", "--head=cnn"], "--head"),
      (["--ticket=" + good, "--dataset=digits", "--model=vgg19"], "--model"),
  ]
  results = run_in_one_process(tmp_path, [
      ["transfer", *args, f"--output_dir={tmp_path}/out"]
      for args, _ in cases])
  for (args, words), (code, err) in zip(cases, results):
    assert code == 2, (args, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], (args, err)
  with pytest.raises(UserError, match="ticket.json was modified"):
    tickets.load(tampered)


def test_one_replicate_claims_no_spread(tmp_path):
  """grid.csv leaves the std empty, the table prints no "± 0.00" and the
  plot draws no error bars where a cell has one replicate; two have one."""
  def rec(kind, replicate, accuracy, level=1):
    return dict(kind=kind, source="digits", source_optimizer="sgd",
                target="mnist_5k", target_optimizer="sgd", level=level,
                replicate=replicate, accuracy=accuracy, density=0.5)
  one = grid_lib.aggregate([rec("transfer", 0, 0.9),
                            rec("random_ticket", 0, 0.8)])
  assert [r["accuracy_std"] for r in one] == [None, None]
  assert "±" not in grid_lib.format_table(one)
  store.write_csv(str(tmp_path / "grid.csv"), one)
  with open(tmp_path / "grid.csv") as f:
    assert [r["accuracy_std"] for r in csv.DictReader(f)] == ["", ""]
  assert grid_lib._curve(one[:1])[2] is None  # pylint: disable=protected-access
  two = grid_lib.aggregate([rec("transfer", 0, 0.9), rec("transfer", 1, 0.8)])
  assert two[0]["accuracy_std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
  assert "± 7.07" in grid_lib.format_table(two)
  assert grid_lib._curve(two)[2] == [pytest.approx(7.0710678)]  # pylint: disable=protected-access


def test_dataset_specs():
  assert grid_lib.parse_datasets("mnist_5k[0-4],digits, cifar10", "sources") \
      == [("mnist_5k", "0-4"), ("digits", ""), ("cifar10", "")]
  assert grid_lib.parse_datasets("a[0,2,4],b[1-3]", "targets") == [
      ("a", "0,2,4"), ("b", "1-3")]
  with pytest.raises(UserError, match="--sources"):
    grid_lib.parse_datasets("mnist[0-4", "sources")


def test_grid_writes_table_plots_and_heatmap(tmp_path):
  # One source found with two optimizers, 2 replicates: 4 finds (a second
  # source dataset would double them; notebook 02's grid has two sources).
  ghp = grid_lib.GridHparams(sources="digits",
                             targets="mnist_5k[5-9]",
                             source_optimizers="sgd,adam",
                             target_optimizers="adam", sgd_lr=0.05,
                             adam_lr=1e-3, replicates=2)
  runner = grid_lib.GridRunner(
      str(tmp_path), DatasetHparams(image_size=28, channels=1),
      ModelHparams("lenet_300_100"),
      TrainingHparams(batch_size=64, training_steps="1ep"),
      PruningHparams(pruning_fraction=0.5), LotteryHparams(levels=1),
      TransferHparams(), ghp, quiet=True, log=lambda line: None)
  path = runner.run()
  out = store.read_json(path)
  with open(os.path.join(runner.exp_dir, "grid.csv")) as f:
    rows = list(csv.DictReader(f))
  kinds = {(r["kind"], r["source"], r["source_optimizer"]) for r in rows}
  for src in ("digits",):
    for so in ("sgd", "adam"):
      assert ("transfer", src, so) in kinds
      assert ("random_ticket", src, so) in kinds
  assert ("own_ticket", "mnist_5k[5-9]", "adam") in kinds
  assert ("dense", "mnist_5k[5-9]", "adam") in kinds
  transfers = [r for r in rows if r["kind"] == "transfer"]
  assert all(int(r["replicates"]) == 2 for r in transfers)
  assert all(r["target_optimizer"] == "adam" for r in rows)
  assert len(out["plots"]) == 2
  for p in out["plots"]:
    assert os.path.getsize(p) > 10_000
  # Resumable: a second run trains nothing (no result file is written
  # again or added) and gives the same table.
  def results():
    return {os.path.join(d, f): os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, files in os.walk(tmp_path) for f in files
            if f.endswith((".json", ".npz", ".pb"))
            # Summaries, rewritten from the runs on every call.
            and f not in ("grid.json", "hparams.json", "summary.json",
                          "transfer.json")}
  before = results()
  again = store.read_json(grid_lib.GridRunner(
      str(tmp_path), DatasetHparams(image_size=28, channels=1),
      ModelHparams("lenet_300_100"),
      TrainingHparams(batch_size=64, training_steps="1ep"),
      PruningHparams(pruning_fraction=0.5), LotteryHparams(levels=1),
      TransferHparams(), ghp, quiet=True, log=lambda line: None).run())
  assert again["rows"] == out["rows"]
  assert results() == before


def test_random_head_mask_masks_the_classifier_not_the_mlp_hidden_layer(
    ticket_paths):
  ticket = tickets.load(ticket_paths["sgd"])
  info = data.info(DatasetHparams(dataset="mnist_5k"))
  _, masks = transfer.prepare(
      ticket, info, TransferHparams(head="mlp", head_mask="random"), seed=0)
  assert np.all(masks[transfer.HEAD_HIDDEN] == 1)
  assert masks["logits"].mean() == pytest.approx(
      ticket.masks["logits"].mean(), abs=0.01)
  assert masks["logits"].mean() < 0.9  # really masked


def test_random_ticket_is_frozen_like_the_transferred_ticket(ticket_paths,
                                                            tmp_path):
  """Mehta's random-features baseline: a frozen random body, a new head."""
  ticket = tickets.load(ticket_paths["sgd"])
  runner = transfer.TransferRunner(
      str(tmp_path), ticket, DatasetHparams(dataset="mnist_5k", classes="5-9"),
      SGD.replace(training_steps="10it"),
      TransferHparams(freeze_transferred=True, head="mlp",
                      transfer_controls="random_ticket"),
      quiet=True, log=lambda line: None)
  summary = store.read_json(runner.run())
  for kind in ("transfer", "random_ticket"):
    run = summary["runs"][kind]
    assert sorted(run["trained_layers"]) == ["head_fc1", "logits"], kind
    assert sorted(run["frozen_layers"]) == ["fc1", "fc2"], kind
  # And the weights say so: the random body did not move in training.
  training_seed = SGD.seed
  model, masks = transfer.prepare(
      ticket, runner.task.info, runner.trhp.replace(transfer_weights="random"),
      seed=training_seed + transfer_runner._RANDOM_TICKET_SEED_OFFSET)  # pylint: disable=protected-access
  frozen = [l for l in model.layers if not l.trainable and l.weights]
  assert {getattr(l, "layer", l).name for l in frozen} == {"fc1", "fc2"}
