"""Experiment names are pinned: a refactor that renames an experiment fails.

Directory names are ``NAME-HASH`` of the result-changing, non-default
hparams (lottery_tf.descriptions), and existing runs (and the README's
paths) depend on them. Starting from the defaults, one field changes at a
time, cumulatively (open_lth's test_desc style); every step's names are
pinned for every command's description, including the steps that must not
change them (--controls, --levels, --data_dir, --checkpoint_every). The
pins were computed with the hash code as it was before descriptions
existed.
"""
import os

from lottery_tf import descriptions as D
from lottery_tf.diet.hparams import ScoreHparams
from lottery_tf.data.hparams import DatasetHparams
from lottery_tf.models.hparams import ModelHparams
from lottery_tf.training.hparams import TrainingHparams
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.pruning.hparams import PruningHparams
from lottery_tf.transfer.hparams import GridHparams
from lottery_tf.transfer.hparams import TransferHparams

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
    ('lottery', 'interpolation_points', 21),
    ('lottery', 'lmc_every_level', True),
    ('lottery', 'barrier_threshold', 0.2),
    ('transfer', 'head', 'mlp'),
    ('transfer', 'freeze_transferred', True),
    ('pruning', 'prune_only', 'conv'),
    ('grid', 'sources', 'mnist_5k,digits'),
    ('grid', 'replicates', 2),
    ('training', 'weight_decay_on', 'all'),
]

# A transfer's source ticket and an lmc start point, as digests.
TICKET_SHA256 = "5" * 64
LMC_SOURCE = {"experiment": "/x/find_lenet_300_100_mnist_5k-cdc2ad36b7",
              "rewind_sha256": "a" * 64}

# Per step: find, score, the diet study's hash, train, lmc, transfer, grid.
PINNED = [
    ["defaults", ["find_lenet_300_100_mnist_5k-cdc2ad36b7", "score_lenet_300_100_mnist_5k-3dbeaf9d7b", "890d62fc14", "train_lenet_300_100_mnist_5k-6c7dffee2b", "lmc_lenet_300_100_mnist_5k-4ddcc5d988", "transfer_lenet_300_100_mnist_5k_l02_to_mnist_5k-eb931fdeaa", "grid_lenet_300_100-d93288d46c"]],
    ["dataset=digits", ["find_lenet_300_100_digits-7d43f49de0", "score_lenet_300_100_digits-9db40d496a", "8ca40b7d05", "train_lenet_300_100_digits-c867e1e60c", "lmc_lenet_300_100_digits-857b762561", "transfer_lenet_300_100_mnist_5k_l02_to_digits-5e22d1a43c", "grid_lenet_300_100-31c2042fd2"]],
    ["model=conv2", ["find_conv2_digits-329a87d0b8", "score_conv2_digits-8a2d5ace0a", "cf8c968247", "train_conv2_digits-6f0e1149f6", "lmc_conv2_digits-e619444b35", "transfer_lenet_300_100_mnist_5k_l02_to_digits-5e22d1a43c", "grid_conv2-ed2c5bd6da"]],
    ["lr=0.05", ["find_conv2_digits-644db84b3d", "score_conv2_digits-9c4a38ff0e", "cb04e73af4", "train_conv2_digits-501e188a42", "lmc_conv2_digits-013203bfbb", "transfer_lenet_300_100_mnist_5k_l02_to_digits-24c06ee98e", "grid_conv2-0605452849"]],
    ["optimizer=adam", ["find_conv2_digits-48f7dc42b3", "score_conv2_digits-c6acab3e63", "c9e254ca13", "train_conv2_digits-c75ce26044", "lmc_conv2_digits-91c9dfc5ba", "transfer_lenet_300_100_mnist_5k_l02_to_digits-0680348c97", "grid_conv2-5966362e8d"]],
    ["training_steps=3ep", ["find_conv2_digits-d41951ce17", "score_conv2_digits-c6acab3e63", "c9a534abec", "train_conv2_digits-2fe2780301", "lmc_conv2_digits-2c3985301f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-bfa498d8bb", "grid_conv2-fc4d96f518"]],
    ["augment=True", ["find_conv2_digits-e2eef52272", "score_conv2_digits-d34e3cd91e", "b5d51bde08", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-c934563f19"]],
    ["pruning_strategy=layerwise", ["find_conv2_digits-a5bdf31b4c", "score_conv2_digits-d34e3cd91e", "b75a3fdad3", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-0332650146"]],
    ["pruning_fraction=0.3", ["find_conv2_digits-f7920fce49", "score_conv2_digits-d34e3cd91e", "028d4ef3b0", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1929f93ffb"]],
    ["layers_to_ignore=logits", ["find_conv2_digits-1f924dad6b", "score_conv2_digits-d34e3cd91e", "19e5a2f8a5", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-98021aaf27"]],
    ["rewind=5it", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1fb9320540"]],
    ["controls=reinit", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1fb9320540"]],
    ["levels=3", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1fb9320540"]],
    ["data_dir=/elsewhere", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1fb9320540"]],
    ["checkpoint_every=100", ["find_conv2_digits-42492e8b2b", "score_conv2_digits-d34e3cd91e", "d7555201e2", "train_conv2_digits-760fe56781", "lmc_conv2_digits-399e2a161f", "transfer_lenet_300_100_mnist_5k_l02_to_digits-49e1ac2543", "grid_conv2-1fb9320540"]],
    ["seed=7", ["find_conv2_digits-72482b5044", "score_conv2_digits-419678399d", "06caab8150", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-6f02887c16", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-ad993dbf38"]],
    ["ensemble_size=2", ["find_conv2_digits-72482b5044", "score_conv2_digits-4f6a61688d", "1f4404866e", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-6f02887c16", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-ad993dbf38"]],
    ["score_steps=5it", ["find_conv2_digits-72482b5044", "score_conv2_digits-0e39f25a31", "99177a2091", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-6f02887c16", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-ad993dbf38"]],
    ["interpolation_points=21", ["find_conv2_digits-72482b5044", "score_conv2_digits-0e39f25a31", "8313a057a6", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-03e4db2efa", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-ad993dbf38"]],
    ["lmc_every_level=True", ["find_conv2_digits-ad4907d32d", "score_conv2_digits-0e39f25a31", "8313a057a6", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-03e4db2efa", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-b2a66c635c"]],
    ["barrier_threshold=0.2", ["find_conv2_digits-060783ec06", "score_conv2_digits-0e39f25a31", "64540e5772", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-9388bb044d", "grid_conv2-a387d101ed"]],
    ["head=mlp", ["find_conv2_digits-060783ec06", "score_conv2_digits-0e39f25a31", "64540e5772", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-2a2decfb2e", "grid_conv2-66be076a9f"]],
    ["freeze_transferred=True", ["find_conv2_digits-060783ec06", "score_conv2_digits-0e39f25a31", "64540e5772", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-f2c4bf7c3b", "grid_conv2-965b131296"]],
    ["prune_only=conv", ["find_conv2_digits-4b8c24247d", "score_conv2_digits-0e39f25a31", "f6b898443c", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-0426e686ed", "grid_conv2-aaf149ee52"]],
    ["sources=mnist_5k,digits", ["find_conv2_digits-4b8c24247d", "score_conv2_digits-0e39f25a31", "f6b898443c", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-0426e686ed", "grid_conv2-0c9d31db35"]],
    ["replicates=2", ["find_conv2_digits-4b8c24247d", "score_conv2_digits-0e39f25a31", "f6b898443c", "train_conv2_digits-416e9cd498", "lmc_conv2_digits-9a6cf5aa57", "transfer_lenet_300_100_mnist_5k_l02_to_digits-0426e686ed", "grid_conv2-a91c7d570e"]],
    ["weight_decay_on=all", ["find_conv2_digits-05c8c56113", "score_conv2_digits-8bf9a0673e", "8771317390", "train_conv2_digits-86efa10e6d", "lmc_conv2_digits-04ff6669d1", "transfer_lenet_300_100_mnist_5k_l02_to_digits-5adae92ee4", "grid_conv2-87b6df2f00"]],
]


def _names(g):
  d, m, t, p, l, s, tr, gr = (g[k] for k in (
      "dataset", "model", "training", "pruning", "lottery", "score",
      "transfer", "grid"))
  return [
      D.Find.of(d, m, t, p, l).dirname,
      D.Score(d, m, t, s).dirname,
      D.Diet.of(d, m, t, p, l, s).hash,
      D.Train(d, m, t).dirname,
      D.LMC(d, m, t, start_kind="rewind", start_step=5, source=LMC_SOURCE,
            interpolation_points=l.interpolation_points,
            barrier_threshold=l.barrier_threshold).dirname,
      D.Transfer(d, t, tr, ticket_sha256=TICKET_SHA256,
                 prune_only=p.prune_only, source_model="lenet_300_100",
                 source_dataset="mnist_5k", source_level=2).dirname,
      D.Grid.of(d, m, t, p, l.replace(controls=""), tr, gr).dirname,
  ]


def test_names_through_a_series_of_non_default_values():
  groups = {"dataset": DatasetHparams(), "model": ModelHparams(),
            "training": TrainingHparams(), "pruning": PruningHparams(),
            "lottery": LotteryHparams(), "score": ScoreHparams(),
            "transfer": TransferHparams(), "grid": GridHparams()}
  got = [["defaults", _names(groups)]]
  for group, name, value in STEPS:
    groups[group] = groups[group].replace(**{name: value})
    got.append([f"{name}={value}", _names(groups)])
  assert got == PINNED


def test_the_experiment_name_flag_and_its_length_limit():
  d, m, t = DatasetHparams(), ModelHparams(), TrainingHparams()
  assert D.Train(d, m, t, name="my/run").dirname == "my_run-6c7dffee2b"
  assert D.Train(d, m, t, name="a" * 189).dirname.endswith("-6c7dffee2b")
  import pytest  # pylint: disable=g-import-not-at-top
  from lottery_tf.errors import UserError  # pylint: disable=g-import-not-at-top
  with pytest.raises(UserError, match="--experiment_name: .*at most 189"):
    D.Train(d, m, t, name="a" * 190).dirname  # pylint: disable=expression-not-assigned


def test_the_readme_demo_experiment_name():
  """`make demo` (flags/demo_mnist5k.cfg) writes the directory the README
  shows."""
  desc = D.Find.of(
      DatasetHparams(dataset="mnist_5k"), ModelHparams("lenet_300_100"),
      TrainingHparams(optimizer="sgd", lr=0.1, batch_size=64,
                      training_steps="15ep", seed=0),
      PruningHparams(pruning_strategy="global", pruning_fraction=0.2,
                     output_layer_fraction=0.1),
      LotteryHparams(rewind="0it", levels=10, controls="reinit,random_mask"))
  assert desc.dirname == "find_lenet_300_100_mnist_5k-9a6b5511c5"
  assert desc.directory("runs") == "runs/find_lenet_300_100_mnist_5k-9a6b5511c5"
  readme = open(os.path.join(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))), "README.md"), encoding="utf-8").read()
  assert desc.dirname in readme
