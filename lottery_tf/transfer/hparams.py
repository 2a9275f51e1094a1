"""How a ticket is carried onto a target dataset (Morcos et al.; Mehta), and
the source x target grid of them (``lottery_tf grid``)."""
import dataclasses
import re
from typing import List, Tuple

from lottery_tf.errors import UserError
from lottery_tf.foundations.hparams import Hparams, field, split_list

WEIGHTS = ("rewind", "trained", "init", "random")
HEADS = ("linear", "mlp")
HEAD_MASKS = ("dense", "random")
CONTROLS = ("own_ticket", "random_ticket", "dense")


@dataclasses.dataclass(frozen=True)
class TransferHparams(Hparams):
  group = "transfer"
  transfer_weights: str = field(
      "rewind", choices=WEIGHTS, help="Weights put under the ticket's mask (Mehta 2019): `rewind` "
      "(the ticket's rewind-point weights, theta_k; Morcos et al.), `trained` "
      "(the source network after training, theta_S), `init` (the source's "
      "initialisation, theta_0) or `random` (a fresh initialisation).")
  freeze_transferred: bool = field(
      False, "Train only the new head; transferred layers (BatchNorm "
      "included) stay as transferred. The random-ticket control freezes the "
      "same layers (Mehta's random-features baseline); the target's own "
      "ticket and dense network are its own IMP and train every layer. Each "
      "run's metrics list its trained_layers and frozen_layers.")
  head: str = field(
      "linear", choices=HEADS, help="New classifier for the target's classes: `linear` (one "
      "Dense, Morcos et al.) or `mlp` (Dense-ReLU-Dense, Mehta 2019).")
  head_hidden: int = field(256, "Width of the hidden layer of --head=mlp.",
                           interval="[1, inf)")
  head_mask: str = field(
      "dense", choices=HEAD_MASKS, help="Mask of the re-initialised classifier (`logits`): `dense`, or "
      "`random` at the density the source's classifier had. The hidden layer "
      "of --head=mlp has no source layer to take a density from and stays "
      "dense.")
  resize_to_ticket: bool = field(
      True, "Bring target images to the ticket's input size and channels "
      "(resize or pad per --resize_method, grayscale<->RGB) unless "
      "--image_size/--channels say otherwise; recorded in the metrics.")
  transfer_controls: str = field(
      "own_ticket,random_ticket,dense", "Controls trained on the target: "
      "`own_ticket` (IMP on the target to the same level; reused if it "
      "exists), `random_ticket` (random mask at the same per-layer density, "
      "random init), `dense`; empty for none.", affects_results=False,
      choices=CONTROLS, many=True)

  def control_list(self):
    return split_list(self.transfer_controls)

  def validate(self):
    self.check()


OPTIMIZERS = ("sgd", "adam")


@dataclasses.dataclass(frozen=True)
class GridHparams(Hparams):
  group = "grid"
  sources: str = field(
      "", "grid: comma-separated source datasets; a class subset in "
      "brackets, e.g. `mnist_5k[0-4]`.")
  targets: str = field("", "grid: comma-separated target datasets (same "
                       "syntax as --sources).")
  source_optimizers: str = field(
      "sgd", "grid: optimizers the source tickets are found with (`sgd`, "
      "`adam`).", choices=OPTIMIZERS, many=True)
  target_optimizers: str = field(
      "sgd", "grid: optimizers the transferred tickets are trained with.",
      choices=OPTIMIZERS, many=True)
  sgd_lr: float = field(0.1, "grid: learning rate of the `sgd` recipe.",
                        interval="(0, inf)")
  sgd_momentum: float = field(0.9, "grid: momentum of the `sgd` recipe.",
                              interval="[0, 1)")
  adam_lr: float = field(3e-4, "grid: learning rate of the `adam` recipe.",
                         interval="(0, inf)")
  transfer_levels: str = field(
      "", "grid: comma-separated levels to transfer (empty: 1..--levels).",
      many=True)
  replicates: int = field(
      1, "grid: seeds per transfer and random ticket; find: seeds of the "
      "recipe (--seed, --seed+1, ...), each its own experiment, the first the "
      "plain find's, their mean and spread per level in "
      "<first>-<N>_replicates/. The tables report mean and standard "
      "deviation.", interval="[1, inf)")
  heatmap_level: int = field(
      -1, "grid: level shown in the heatmap (-1: the last one).",
      affects_results=False)
  heatmap_baseline: str = field(
      "random_ticket", choices=("random_ticket", "own_ticket", "none"),
      help="grid: the heatmap shows each transfer's accuracy minus this "
      "control's on the same target (random_ticket: same source, density "
      "and optimizers; own_ticket: the target's IMP at that level), on a "
      "diverging scale centred at 0; `none`: plain accuracy. A cell without "
      "its baseline is left blank.", affects_results=False)
  executor: str = field(
      "local", choices=("local", "ray"),
      help="grid: `local` runs every find and transfer one after another in "
      "this process; `ray` runs each source find and each transfer cell "
      "(with its controls) as a Ray task, a cell as soon as its source's "
      "tickets exist (pip install lottery_tf[ray]). Same results either "
      "way.", affects_results=False)
  ray_address: str = field(
      "", "grid, --executor=ray: the Ray cluster (`auto`, or HOST:PORT of its "
      "head); empty: a Ray instance started on this machine for the run.",
      affects_results=False)
  cpus_per_run: float = field(
      1.0, "grid, --executor=ray: CPUs Ray reserves for each task.",
      affects_results=False, interval="(0, inf)")
  gpus_per_run: float = field(
      0.0, "grid, --executor=ray: GPUs Ray reserves for each task (a "
      "fraction shares one).", affects_results=False, interval="[0, inf)")

  def validate(self, levels: int):
    for flag in ("sources", "targets"):
      if not parse_datasets(getattr(self, flag), flag):
        raise UserError(f"--{flag}: give at least one dataset")
    self.check()
    for flag in ("source_optimizers", "target_optimizers"):
      if not split_list(getattr(self, flag)):
        raise UserError(f"--{flag}: name at least one of: "
                        f"{', '.join(OPTIMIZERS)}")
    for lv in self.levels(levels):
      if not 0 <= lv <= levels:
        raise UserError(f"--transfer_levels: level {lv} is not in 0..{levels}")
    if not -1 <= self.heatmap_level <= levels:
      raise UserError(f"--heatmap_level: {self.heatmap_level} is not -1 (the "
                      f"last level) or in 0..{levels} (--levels)")

  def levels(self, levels: int) -> List[int]:
    if not self.transfer_levels.strip():
      return list(range(1, levels + 1)) or [0]
    try:
      return [int(x) for x in split_list(self.transfer_levels)]
    except ValueError:
      raise UserError(f"--transfer_levels: {self.transfer_levels!r} is not "
                      "a comma-separated list of levels") from None


_SPEC = re.compile(r"^([\w/]+)(?:\[([0-9,\- ]+)\])?$")


def parse_datasets(text: str, flag: str) -> List[Tuple[str, str]]:
  """``"mnist_5k[0-4],digits"`` -> [("mnist_5k", "0-4"), ("digits", "")]."""
  out, depth, part = [], 0, ""
  for ch in text + ",":
    if ch == "," and depth == 0:
      if part.strip():
        m = _SPEC.match(part.strip())
        if not m:
          raise UserError(f"--{flag}: {part.strip()!r} is not NAME or "
                          "NAME[classes], e.g. mnist_5k[0-4]")
        out.append((m.group(1), (m.group(2) or "").replace(" ", "")))
      part = ""
      continue
    depth += ch == "["
    depth -= ch == "]"
    part += ch
  if depth != 0 or part.strip(","):
    raise UserError(f"--{flag}: unbalanced brackets in {text!r}; write "
                    "NAME[classes], e.g. mnist_5k[0-4]")
  return out
