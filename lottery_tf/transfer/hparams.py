"""How a ticket is carried onto a target dataset (Morcos et al.; Mehta)."""
import dataclasses

from lottery_tf.errors import UserError
from lottery_tf.hparams import Hparams, field

WEIGHTS = ("rewind", "trained", "init", "random")
HEADS = ("linear", "mlp")
HEAD_MASKS = ("dense", "random")
CONTROLS = ("own_ticket", "random_ticket", "dense")


@dataclasses.dataclass(frozen=True)
class TransferHparams(Hparams):
  group = "transfer"
  transfer_weights: str = field(
      "rewind", "Weights put under the ticket's mask (Mehta 2019): `rewind` "
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
      "linear", "New classifier for the target's classes: `linear` (one "
      "Dense, Morcos et al.) or `mlp` (Dense-ReLU-Dense, Mehta 2019).")
  head_hidden: int = field(256, "Width of the hidden layer of --head=mlp.")
  head_mask: str = field(
      "dense", "Mask of the re-initialised classifier (`logits`): `dense`, or "
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
      "random init), `dense`; empty for none.", affects_results=False)

  def control_list(self):
    return [c.strip() for c in self.transfer_controls.split(",") if c.strip()]

  def validate(self):
    if self.transfer_weights not in WEIGHTS:
      raise UserError(f"--transfer_weights: {self.transfer_weights!r} is not "
                      f"one of: {', '.join(WEIGHTS)}")
    if self.head not in HEADS:
      raise UserError(f"--head: {self.head!r} is not one of: "
                      f"{', '.join(HEADS)}")
    if self.head_hidden < 1:
      raise UserError(f"--head_hidden: must be >= 1, got {self.head_hidden}")
    if self.head_mask not in HEAD_MASKS:
      raise UserError(f"--head_mask: {self.head_mask!r} is not one of: "
                      f"{', '.join(HEAD_MASKS)}")
    unknown = set(self.control_list()) - set(CONTROLS)
    if unknown:
      raise UserError(f"--transfer_controls: unknown control(s) "
                      f"{sorted(unknown)}; choose from: {', '.join(CONTROLS)}")
