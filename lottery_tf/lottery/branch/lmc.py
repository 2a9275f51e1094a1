"""Instability of each level's ticket (Frankle et al. 2020), as a branch.

Two copies train from the rewind point under the level's mask with different
data orders: the ticket itself (data seed --seed) when it started there, and
one with another data seed; the error barrier on the linear path between
them is the instability (``find --lmc_every_level`` or ``--controls=lmc``).
"""
import dataclasses
from typing import Dict, Optional

from lottery_tf.lottery.branch.base import Branch, Level, RunPlan
from lottery_tf.lottery.branch.registry import register

#: What the level's own metrics.json (and summary rows) keep of it.
SUMMARY_KEYS = ("instability", "connected_fraction", "per_example_barrier_mean",
                "train_error_barrier", "test_error_barrier",
                "barrier_threshold")


@register
class LinearModeConnectivity(Branch):
  name = "lmc"
  help = ("a second copy from the rewind point with another data order: "
          "the instability (error barrier on the linear path)")
  at_level_0 = True
  reports_accuracy = False
  wants_ticket_weights = True

  def __init__(self):
    self._data = None
    self._arrays: Dict[str, dict] = {}

  def plan(self, level: Level) -> Optional[RunPlan]:
    """The second copy: from the rewind point, another data order. Only
    when the ticket (the first copy) trains from the rewind point beside it
    or did in this process; else :meth:`run` trains both."""
    from lottery_tf.analysis import lmc  # pylint: disable=g-import-not-at-top
    if self._first_copy_missing(level):
      return None
    return RunPlan(level.trainer.rewind_weights(), level.mask,
                   start=level.rewind_step, seed=level.seed,
                   data_seed=level.seed + lmc.COPY_SEED_OFFSET,
                   run_dir=level.directory)

  @staticmethod
  def _first_copy_missing(level: Level) -> bool:
    return level.ticket_weights is None and not level.ticket_beside

  def run(self, level: Level) -> dict:
    if self._first_copy_missing(level):
      # The first copy, as the ticket trains (data order --seed).
      trainer = level.trainer
      trainer.train(trainer.rewind_weights(), level.mask,
                    start=level.rewind_step, seed=level.seed)
      level = dataclasses.replace(level, ticket_weights=trainer.weights())
    return super().run(level)

  def finish(self, level: Level, out: dict) -> dict:
    from lottery_tf.analysis import lmc  # pylint: disable=g-import-not-at-top
    if self._data is None:
      self._data = lmc.datasets_for(level.task.dhp, level.task.info)
    summary, arrays = lmc.evaluate_path(
        level.trainer.model(), level.ticket_weights, out["weights"],
        self._data, points=level.lottery.interpolation_points,
        threshold=level.lottery.barrier_threshold)
    summary.update(density=out["density"],
                   data_seeds=[level.seed, level.seed + lmc.COPY_SEED_OFFSET],
                   second_copy=out["metrics"])
    if "stacked_runs" in out:
      summary["stacked_runs"] = out["stacked_runs"]
    self._arrays[level.directory] = arrays
    return summary

  def save(self, directory: str, metrics: dict, writer) -> None:
    from lottery_tf.analysis import lmc  # pylint: disable=g-import-not-at-top
    # Its per-example arrays and plot, then metrics.json.
    lmc.save(directory, metrics, self._arrays.pop(directory),
             title=f"two copies of the level {metrics['level']} ticket "
             f"({100 * metrics['density']:.1f}% of weights) from the rewind "
             "point", writer=writer)

  def level_summary(self, metrics: dict) -> dict:
    return {k: metrics[k] for k in SUMMARY_KEYS}
