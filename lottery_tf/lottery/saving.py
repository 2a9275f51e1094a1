"""The SavedModels a level leaves: its ticket and its trained network.

``ticket/`` is the mask on the rewind weights with its provenance (what
``transfer`` and ``export`` read, as tensors); ``trained/`` the network the
level trained, servable on raw images (lottery_tf.tickets). Under
--strategy=multi_worker every worker must save (saving is collective); only
the chief keeps what it saved.
"""
from typing import Callable, Dict

from lottery_tf import tickets
from lottery_tf.foundations import fs, store
from lottery_tf.lottery.task import Task


class Saver:
  """Saves one experiment's SavedModels through ``writer``; ``provenance()``
  is the experiment's hparams, seed and versions, recorded in each."""

  def __init__(self, task: Task, php, lhp, *, rewind_step: int,
               provenance: Callable[[], dict], writer: store.Writer,
               is_chief: bool):
    self.task = task
    self.php = php
    self.lhp = lhp
    self.rewind_step = rewind_step
    self.provenance = provenance
    self.writer = writer
    self.is_chief = is_chief

  def _save(self, path: str, save) -> None:
    """``save(dir)``: every worker must save (collective); only the chief
    keeps it."""
    save(self.writer.path(path))
    if not self.is_chief:
      fs.rmtree(self.writer.path(path))

  def _about(self, level: int, density: float) -> dict:
    t = self.task
    return {"model": t.mhp.model, "dataset": t.dhp.dataset, "level": level,
            "density": density, "input_shape": list(t.info.input_shape),
            "num_classes": t.info.num_classes}

  def trained(self, path: str, model, level: int, density: float) -> None:
    """The trained network; the data hparams give it its raw-image
    signature and the preprocessing numbers in assets/trained.json."""
    meta = self._about(level, density)
    self._save(path, lambda p: tickets.save_trained(p, model, self.task.dhp,
                                                    meta))

  def ticket(self, path: str, model, level: int,
             run: Dict[str, object]) -> None:
    """The ticket: ``model`` holding the level's mask on the rewind
    weights; ``run``: the ticket's metrics (its densities)."""
    meta = {
        **self._about(level, run["density"]),
        "optimizer": self.task.thp.optimizer,
        "density_per_layer": run["density_per_layer"],
        "rewind": self.lhp.rewind,
        "rewind_step": self.rewind_step,
        "pruning": self.php.to_dict(),
        **self.provenance(),
    }
    self._save(path, lambda p: tickets.save(p, model, meta, self.task.dhp))

