"""Experiment names are pinned: a refactor that renames an experiment fails.

Directory names are ``NAME-HASH`` of the result-changing, non-default
hparams, and existing runs (and the README's paths) depend on them. Starting
from the defaults, one field changes at a time, cumulatively (open_lth's
test_desc style); every step's names are pinned, including the steps that
must not change them (--controls, --levels, --data_dir, --checkpoint_every).
"""
import os
import types

from lottery_tf.diet import scores, study
from lottery_tf.diet.hparams import ScoreHparams
from lottery_tf.hparams import DatasetHparams, ModelHparams, TrainingHparams
from lottery_tf.lottery.experiments import find_experiment_dir
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.pruning.hparams import PruningHparams

STEPS = [
    ('dataset', 'dataset', 'digits'),
    ('model', 'model', 'conv2'),
    ('training', 'lr', 0.05),
    ('training', 'optimizer', 'adam'),
    ('training', 'training_steps', '3ep'),
    ('dataset', 'augment', True),
    ('pruning', 'pruning_strategy', 'layerwise'),
    ('pruning', 'pruning_fraction', 0.3),
    ('pruning', 'layers_to_ignore', 'logits'),
    ('lottery', 'rewind', '5it'),
    ('lottery', 'controls', 'reinit'),
    ('lottery', 'levels', 3),
    ('dataset', 'data_dir', '/elsewhere'),
    ('training', 'checkpoint_every', 100),
    ('training', 'seed', 7),
    ('score', 'ensemble_size', 2),
    ('score', 'score_steps', '5it'),
]

# Per step: find's directory, score's directory, the diet study's hash.
PINNED = [
    ["defaults", ["find_lenet_300_100_mnist_5k-cdc2ad36b7", "score_lenet_300_100_mnist_5k-3dbeaf9d7b", "890d62fc14"]],
    ["dataset=digits", ["find_lenet_300_100_digits-7d43f49de0", "score_lenet_300_100_digits-9db40d496a", "8ca40b7d05"]],
    ["model=conv2", ["find_conv2_digits-329a87d0b8", "score_conv2_digits-8a2d5ace0a", "cf8c968247"]],
    ["lr=0.05", ["find_conv2_digits-644db84b3d", "score_conv2_digits-9c4a38ff0e", "cb04e73af4"]],
    ["optimizer=adam", ["find_conv2_digits-48f7dc42b3", "score_conv2_digits-c6acab3e63", "c9e254ca13"]],
    ["training_steps=3ep", ["find_conv2_digits-d41951ce17", "score_conv2_digits-c6acab3e63", "c9a534abec"]],
    ["augment=True", ["find_conv2_digits-e2eef52272", "score_conv2_digits-d34e3cd91e", "b5d51bde08"]],
    ["pruning_strategy=layerwise", ["find_conv2_digits-a5bdf31b4c", "score_conv2_digits-d34e3cd91e", "b75a3fdad3"]],
    ["pruning_fraction=0.3", ["find_conv2_digits-f7920fce49", "score_conv2_digits-d34e3cd91e", "028d4ef3b0"]],
    ["layers_to_ignore=logits", ["find_conv2_digits-1f924dad6b", "score_conv2_digits-d34e3cd91e", "19e5a2f8a5"]],
    ["rewind=5it", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2"]],
    ["controls=reinit", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2"]],
    ["levels=3", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2"]],
    ["data_dir=/elsewhere", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2"]],
    ["checkpoint_every=100", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2"]],
    ["seed=7", ["find_conv2_digits-72482b5044", "score_conv2_digits-419678399d", "06caab8150"]],
    ["ensemble_size=2", ["find_conv2_digits-72482b5044", "score_conv2_digits-4f6a61688d", "1f4404866e"]],
    ["score_steps=5it", ["find_conv2_digits-72482b5044", "score_conv2_digits-0e39f25a31", "99177a2091"]],
]


def _names(g):
  task = types.SimpleNamespace(dhp=g["dataset"], mhp=g["model"],
                               thp=g["training"])
  return [
      os.path.basename(find_experiment_dir("runs", task, g["pruning"],
                                           g["lottery"])),
      os.path.basename(scores.experiment_dir(
          "runs", g["dataset"], g["model"], g["training"], g["score"])),
      study.experiment_hash(g["dataset"], g["model"], g["training"],
                            g["pruning"], g["lottery"], g["score"]),
  ]


def test_names_through_a_series_of_non_default_values():
  groups = {"dataset": DatasetHparams(), "model": ModelHparams(),
            "training": TrainingHparams(), "pruning": PruningHparams(),
            "lottery": LotteryHparams(), "score": ScoreHparams()}
  got = [["defaults", _names(groups)]]
  for group, name, value in STEPS:
    groups[group] = groups[group].replace(**{name: value})
    got.append([f"{name}={value}", _names(groups)])
  assert got == PINNED


def test_the_readme_demo_experiment_name():
  """`make demo` (flags/demo_mnist5k.cfg) writes the directory the README
  shows."""
  task = types.SimpleNamespace(
      dhp=DatasetHparams(dataset="mnist_5k"), mhp=ModelHparams("lenet_300_100"),
      thp=TrainingHparams(optimizer="sgd", lr=0.1, batch_size=64,
                          training_steps="15ep", seed=0))
  php = PruningHparams(pruning_strategy="global", pruning_fraction=0.2,
                       output_layer_fraction=0.1)
  lhp = LotteryHparams(rewind="0it", levels=10,
                       controls="reinit,random_mask")
  name = os.path.basename(find_experiment_dir("runs", task, php, lhp))
  assert name == "find_lenet_300_100_mnist_5k-9a6b5511c5"
  readme = open(os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "README.md"), encoding="utf-8").read()
  assert name in readme
