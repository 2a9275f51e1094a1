"""Extending lottery_tf as the README says: a model is one function and one
decorator line, a dataset one DatasetSpec row; `find` then runs on them
through the CLI, and a model that breaks a convention is refused in one line.

Everything registered here is unregistered when its test ends, so no other
test sees it. The CLI runs in this process (its own parse-and-run path,
main._parse and main._main, as `lottery_tf ARGS` does): a registration made
in a test lives only in the test's process.
"""
import contextlib
import dataclasses
import os

import numpy as np
import pytest
from absl import flags

from conftest import run_cli_in_process

from lottery_tf import data, keras, models, tickets
from lottery_tf.foundations import store
from lottery_tf.data.registry import DatasetSpec
from lottery_tf.errors import UserError
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models import base
from lottery_tf.models.registry import register
from lottery_tf.training import distribute
from lottery_tf.training.rewind import named_weights

MODEL = "test_extending_mlp_500"
DATASET = "test_extending_digits"
LEVELS = 2


def mlp_500(image, num_classes, init):
  """The README's example model, verbatim but for its registered name."""
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(500, activation="relu", name="fc1",
                         kernel_initializer=init.glorot_normal())(x)
  return base.classifier(x, num_classes, init.glorot_normal())


#: The README's dataset row: scikit-learn's digits (the embedded TFDS builder
#: "digits") under a registry name of its own.
DIGITS_ROW = DatasetSpec(
    DATASET, "digits", 10, (8, 8, 1), (0.3059,), (0.3764,),
    num_train=1437, num_test=360, embedded=True,
    stats_source="computed on the 1,437 train images")


@contextlib.contextmanager
def registered_model(name, builder, description="A test model", **kwargs):
  """``register(name, ...)(builder)`` for the duration of the block."""
  register(name, description, **kwargs)(builder)
  try:
    yield name
  finally:
    models.unregister(name)


@contextlib.contextmanager
def registered_dataset(spec):
  data.register(spec)
  try:
    yield spec.name
  finally:
    data.unregister(spec.name)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
  """A TFDS data dir where the embedded digits get built once."""
  return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture
def cli_in_process(monkeypatch):
  """``run(*args) -> (exit status, stdout, stderr)`` of ``lottery_tf ARGS``,
  run in this process. The flags and the process's tf.distribute strategy
  are put back afterwards."""
  # Snapshot the strategy setup() creates once per process, so that this
  # test's run does not fix it for the tests after it.
  monkeypatch.setattr(distribute, "_STRATEGY", distribute._STRATEGY)  # pylint: disable=protected-access
  monkeypatch.setattr(distribute, "_KEY", distribute._KEY)  # pylint: disable=protected-access

  yield lambda *args: run_cli_in_process(args)
  flags.FLAGS.unparse_flags()


def _find_args(model, dataset, data_dir, output_dir):
  return ["find", f"--model={model}", f"--dataset={dataset}",
          f"--data_dir={data_dir}", f"--output_dir={output_dir}",
          "--training_steps=30it", "--batch_size=64", "--lr=0.05",
          "--momentum=0.9", f"--levels={LEVELS}", "--rewind=2it",
          "--controls=reinit", "--seed=1", "--quiet"]


# ----------------------------------------------------------------------------
# A new model and a new dataset, through `find`.


def test_find_runs_on_a_newly_registered_model_and_dataset(
    cli_in_process, data_dir, tmp_path):
  assert MODEL not in models.names() and DATASET not in data.names()
  with registered_model(MODEL, mlp_500,
                        "One hidden layer of 500 units",
                        canonical_input=((28, 28, 1), 10)), \
      registered_dataset(DIGITS_ROW):
    assert MODEL in models.names() and DATASET in data.names()
    code, out, err = cli_in_process(
        *_find_args(MODEL, DATASET, data_dir, str(tmp_path / "runs")))
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert last.startswith("results: ") and last.endswith("/summary.json")
    exp = os.path.dirname(last[len("results: "):])
    assert os.path.basename(exp).startswith(f"find_{MODEL}_{DATASET}-")

    # Levels 0..2: the power law of global pruning at 20% a round, on the
    # MLP's two layers (64x500 + 500x10 kernels), nested masks.
    names = sorted(os.listdir(exp))
    assert [n for n in names if n.startswith("level_")] == [
        "level_00", "level_01", "level_02"]
    previous = None
    for level in range(LEVELS + 1):
      d = os.path.join(exp, f"level_{level:02d}")
      metrics = store.read_json(os.path.join(d, "metrics.json"))
      assert metrics["level"] == level and metrics["run"] == "ticket"
      assert metrics["density"] == pytest.approx(0.8 ** level, abs=1e-4)
      assert set(metrics["density_per_layer"]) == {"fc1", "logits"}
      assert metrics["data"]["name"] == DATASET
      assert metrics["data"]["input_shape"] == [8, 8, 1]
      assert metrics["hparams"]["model"]["model"] == MODEL
      assert metrics["metrics"]["test_accuracy"] > 0.5
      masks = store.read_npz(os.path.join(d, "mask.npz"))
      assert {k: m.shape for k, m in masks.items()} == {
          "fc1": (64, 500), "logits": (500, 10)}
      alive = sum(int(m.sum()) for m in masks.values())
      assert abs(alive - 37_000 * 0.8 ** level) <= level + 1
      if previous is not None:
        for key, m in masks.items():
          assert np.all(m <= previous[key]), (level, key)
      previous = masks
      for f in ("ticket", "trained"):
        assert os.path.isdir(os.path.join(d, f)), (level, f)
      # The one control asked for, beside the ticket from level 1 on.
      assert os.path.isdir(os.path.join(d, "reinit")) == (level > 0)
      assert not os.path.exists(os.path.join(d, "random_mask"))
    summary = store.read_json(os.path.join(exp, "summary.json"))
    assert sorted((r["level"], r["run"]) for r in summary["rows"]) == [
        (0, "ticket"), (1, "reinit"), (1, "ticket"), (2, "reinit"),
        (2, "ticket")]
    for name in ("summary.csv", "accuracy_vs_density.png", "hparams.json"):
      assert os.path.getsize(os.path.join(exp, name)) > 0, name

    # The ticket names its model and dataset and rebuilds as the model:
    # level 2's masks, its weights.
    ticket = tickets.load(os.path.join(exp, "level_02", "ticket"))
    assert ticket.model_name == MODEL and ticket.meta["dataset"] == DATASET
    assert ticket.meta["density"] == pytest.approx(0.64, abs=1e-4)
    for key, mask in previous.items():
      np.testing.assert_array_equal(ticket.masks[key], mask)
    built = ticket.build()
    assert built.output_shape == (None, 10)
    weights = named_weights(built)
    assert {"fc1/kernel", "logits/kernel"} <= set(weights)
    for key, var in weights.items():
      np.testing.assert_array_equal(var.numpy(), ticket.weights[key])
  assert MODEL not in models.names() and DATASET not in data.names()


def test_list_shows_a_new_model_on_its_canonical_input(cli_in_process):
  with registered_model(MODEL, mlp_500, "One hidden layer of 500 units",
                        canonical_input=((28, 28, 1), 10)):
    assert models.canonical_input(MODEL) == ((28, 28, 1), 10)
    assert models.canonical_label(MODEL) == "28x28x1, 10 classes"
    count = models.param_count(MODEL, (28, 28, 1), 10)
    assert count == 784 * 500 + 500 + 500 * 10 + 10
    code, out, err = cli_in_process("list")
    assert code == 0, err
    line, = [l for l in out.splitlines() if l.split()[:1] == [MODEL]]
    assert f"{count:,}" in line and "(28x28x1, 10 classes)" in line, line
    assert "One hidden layer of 500 units" in line


def _dhp(dataset, data_dir):
  return DatasetHparams(dataset=dataset, data_dir=data_dir)


def test_a_new_dataset_row_is_read_like_the_one_it_points_at(data_dir):
  with registered_dataset(DIGITS_ROW):
    info = data.info(_dhp(DATASET, data_dir))
    assert info.name == DATASET and info.num_classes == 10
    assert info.num_examples == {"train": 1437, "validation": 0, "test": 360}
    x, y = next(iter(data.load(_dhp(DATASET, data_dir), "test",
                               batch_size=360)))
    x0, y0 = next(iter(data.load(_dhp("digits", data_dir), "test",
                                 batch_size=360)))
    np.testing.assert_array_equal(y.numpy(), y0.numpy())
    np.testing.assert_array_equal(x.numpy(), x0.numpy())
    assert DATASET in [r["name"] for r in data.describe()]
  assert DATASET not in data.names()
  assert DATASET not in [r["name"] for r in data.describe()]


# ----------------------------------------------------------------------------
# Registering is undone, and a name is registered once.


def test_unregistering_undoes_registering():
  def wide(image, num_classes, init):
    x = keras.layers.Flatten(name="flatten")(image)
    x = keras.layers.Dense(7, name="fc1",
                           kernel_initializer=init.glorot_normal())(x)
    return base.classifier(x, num_classes, init.glorot_normal())

  with registered_model(MODEL, mlp_500):
    assert models.param_count(MODEL, (8, 8, 1), 10) == 37_510
  assert MODEL not in models.names()
  with pytest.raises(UserError, match=f"^--model: unknown model '{MODEL}'"):
    models.build(MODEL, (8, 8, 1), 10)
  # Another builder under the same name: no count of the old one survives.
  with registered_model(MODEL, wide):
    assert models.param_count(MODEL, (8, 8, 1), 10) == 64 * 7 + 7 + 7 * 10 + 10
  with pytest.raises(UserError, match="unknown model"):
    models.unregister(MODEL)
  with pytest.raises(UserError, match="unknown dataset"):
    data.unregister(DATASET)


def test_a_name_is_registered_once():
  with pytest.raises(UserError, match=r"^models.register: model 'conv2' is "
                     r"registered twice \(first by lottery_tf.models.conv"):
    register("conv2", "Another Conv-2")(mlp_500)
  assert models.get("conv2").builder is not mlp_500
  with pytest.raises(UserError, match=r"^data.register: dataset 'digits' is "
                     "registered twice"):
    data.register(DatasetSpec("digits", "mnist", 10, (28, 28, 1), (0.1,),
                              (0.3,)))
  assert data.REGISTRY["digits"].tfds_name == "digits"


@pytest.mark.parametrize("kwargs, words", [
    (dict(canonical_input=(28, 10)), "canonical_input must be"),
    (dict(canonical_input=((28, 28, 1), 1)), "at least 2 classes"),
    (dict(canonical_input=((28, 28), 10)), "canonical_input must be"),
    (dict(min_image_size=64, canonical_input=((28, 28, 1), 10)),
     "smaller than the model's min_image_size 64"),
    (dict(min_image_size=0), "min_image_size must be a positive integer"),
    (dict(description="two\nlines"), "description must be one"),
    (dict(name="two words"), "name must be a non-empty string"),
])
def test_bad_registration_arguments_are_user_errors(kwargs, words):
  args = {"name": MODEL, "description": "A test model", **kwargs}
  with pytest.raises(UserError, match=words):
    register(**args)(mlp_500)
  assert args["name"] not in models.names()


@pytest.mark.parametrize("changes, words", [
    (dict(mean=(0.1, 0.2)), "mean needs one value per channel"),
    (dict(num_classes=1), "num_classes must be an integer >= 2"),
    (dict(shape=(8, 8, 2)), "shape must be"),
    (dict(std=(0.0,)), "std > 0"),
    (dict(name=""), "name must be a non-empty string"),
])
def test_bad_dataset_rows_are_user_errors(changes, words):
  row = dataclasses.replace(DIGITS_ROW, **changes)
  with pytest.raises(UserError, match=words):
    data.register(row)
  assert row.name not in data.names()


# ----------------------------------------------------------------------------
# A model that breaks a convention: one UserError naming the model and the
# problem, from build and from param_count (the throwaway-graph build that
# `lottery_tf list` and every command's checks run before any work).


def no_return(image, num_classes, init):
  mlp_500(image, num_classes, init)


def returns_a_layer(image, num_classes, init):
  del image, init
  return keras.layers.Dense(num_classes, name="logits")


def returns_a_tuple(image, num_classes, init):
  logits = mlp_500(image, num_classes, init)
  return logits, logits


def no_classifier(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  return keras.layers.Dense(num_classes, name="out",
                            kernel_initializer=init.glorot_normal())(x)


def classifier_then_softmax(image, num_classes, init):
  logits = mlp_500(image, num_classes, init)
  return keras.layers.Softmax(name="probabilities")(logits)


def wrong_units(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  return base.classifier(x, num_classes + 1, init.glorot_normal())


def softmax_logits(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  return keras.layers.Dense(num_classes, activation="softmax", name="logits",
                            kernel_initializer=init.glorot_normal())(x)


def unnamed_layer(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(500, activation="relu",
                         kernel_initializer=init.glorot_normal())(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def unnamed_conv(image, num_classes, init):
  x = keras.layers.Conv2D(4, 3, kernel_initializer=init.he_normal())(image)
  x = keras.layers.Flatten(name="flatten")(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def unseeded(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(500, activation="relu", name="fc1")(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def fixed_seed(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(
      500, activation="relu", name="fc1",
      kernel_initializer=keras.initializers.GlorotNormal(seed=0))(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def shared_initializer(image, num_classes, init):
  glorot = init.glorot_normal()
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(64, name="fc1", kernel_initializer=glorot)(x)
  x = keras.layers.Dense(64, name="fc2", kernel_initializer=glorot)(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def duplicate_names(image, num_classes, init):
  x = keras.layers.Flatten(name="flatten")(image)
  x = keras.layers.Dense(64, name="fc1",
                         kernel_initializer=init.glorot_normal())(x)
  x = keras.layers.Dense(64, name="fc1",
                         kernel_initializer=init.glorot_normal())(x)
  return base.classifier(x, num_classes, init.glorot_normal())


def own_input(image, num_classes, init):
  del image
  x = keras.layers.Flatten(name="flatten")(keras.Input((8, 8, 1)))
  return base.classifier(x, num_classes, init.glorot_normal())


BROKEN = [
    (no_return, "the builder returned None, not the logits tensor "
     r"\(a missing `return`\?\)"),
    (returns_a_layer, "the builder returned a Dense layer 'logits', not the "
     "logits tensor"),
    (returns_a_tuple, "the builder returned a tuple, not the logits tensor"),
    (no_classifier, "its last layer is Dense 'out', not the classifier "
     r"Dense\(num_classes, name='logits'\)"),
    (classifier_then_softmax, "its last layer is Softmax 'probabilities', "
     "not the classifier"),
    (wrong_units, "its 'logits' layer has 11 units for 10 classes"),
    (softmax_logits, "its 'logits' layer applies 'softmax'; it must output "
     "raw logits"),
    (unnamed_layer, r"layer 'dense(_\d+)?' \(Dense\) has weights but an "
     "automatic name; give it an explicit name="),
    (unnamed_conv, r"layer 'conv2d(_\d+)?' \(Conv2D\) has weights but an "
     "automatic name"),
    (unseeded, "layer 'fc1' has an unseeded kernel_initializer "
     r"\(GlorotUniform\); take it from the builder's init"),
    (fixed_seed, r"layer 'fc1' has a kernel_initializer \(GlorotNormal\) "
     "with a fixed seed 0, not one from the builder's init"),
    (shared_initializer, r"layers 'fc1' \(kernel_initializer\) and 'fc2' "
     r"\(kernel_initializer\) share one initializer seed"),
    (duplicate_names, "its layers do not make a model of the input it was "
     "given: The name \"fc1\" is used 2 times"),
    (own_input, "its layers do not make a model of the input it was given: "
     "Graph disconnected"),
]


@pytest.mark.parametrize("builder, problem", BROKEN,
                         ids=[b.__name__ for b, _ in BROKEN])
def test_a_model_breaking_a_convention_is_a_one_line_user_error(
    builder, problem):
  name = f"test_extending_{builder.__name__}"
  prefix = (f"^model '{name}' \\(test_extending\\.{builder.__name__}\\): "
            f"{problem}")
  with registered_model(name, builder, canonical_input=((8, 8, 1), 10)):
    for call in (lambda: models.build(name, (8, 8, 1), 10),
                 lambda: models.param_count(name, (8, 8, 1), 10)):
      with pytest.raises(UserError, match=prefix) as info:
        call()
      assert "\n" not in str(info.value)
  assert name not in models.names()


def test_the_cli_refuses_a_broken_model_before_any_work(
    cli_in_process, data_dir, tmp_path):
  name = "test_extending_unseeded"
  with registered_model(name, unseeded):
    code, out, err = cli_in_process(
        *_find_args(name, "digits", data_dir, str(tmp_path / "runs")))
  assert code == 2, (out, err)
  line, = err.strip().splitlines()
  assert line.startswith(f"lottery_tf: error: model '{name}' "), line
  assert "unseeded kernel_initializer" in line, line
  runs = tmp_path / "runs"  # Refused before any experiment was written.
  assert not runs.exists() or not os.listdir(runs)
