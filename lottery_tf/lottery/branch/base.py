"""What a branch of an IMP level is: what it gets, what it returns.

A branch (open_lth's word) is a run beside a level's ticket that uses the
level's mask or rewind point: a control (``reinit``, ``random_mask``) or a
measurement (``lmc``). The runner trains the ticket, then every branch asked
for (``--controls``, ``--lmc_every_level``) whose ``metrics.json`` is not
there yet, in ``level_NN/<name>/``; it adds the bookkeeping (level, run,
wall time, provenance) and writes the files, so a branch is only the
science. To add one: a subclass of :class:`Branch` in a module of this
package, decorated with :func:`lottery_tf.lottery.branch.registry.register`,
and imported in ``branch/__init__.py``; ``--controls=NAME`` then runs it and
``lottery_tf list`` shows it.
"""
import dataclasses
from typing import Any, ClassVar, Dict, Optional

import numpy as np

from lottery_tf import paths

Weights = Dict[str, np.ndarray]


@dataclasses.dataclass
class RunPlan:
  """One training run, as :meth:`Trainer.train` takes it: what a branch
  that is only a training run returns from :meth:`Branch.plan`, so that the
  runner can train it side by side with the level's ticket and other
  controls (:meth:`Trainer.train_stacked`)."""
  weights: Weights
  masks: Weights
  start: int
  seed: int
  data_seed: Optional[int] = None
  run_dir: Optional[str] = None

  def kwargs(self) -> dict:
    return dict(start=self.start, seed=self.seed, data_seed=self.data_seed,
                run_dir=self.run_dir)


class Trainer:
  """The runner's training service, as a branch sees it.

  Every run seeds itself and starts from explicit weights, masks and a fresh
  optimizer (its lr schedule at ``start``), so it gives the same numbers
  whatever ran before it in the process.
  """

  def train(self, weights: Weights, masks: Weights, *, start: int, seed: int,
            data_seed: Optional[int] = None,
            run_dir: Optional[str] = None) -> dict:
    """Trains from ``weights`` under ``masks`` from step ``start`` to the
    end; with ``run_dir``, checkpoints there (--checkpoint_every) and
    resumes from its checkpoint. Returns the run's metrics (test accuracy,
    density, steps, seeds...)."""
    raise NotImplementedError

  def train_plan(self, plan: RunPlan) -> dict:
    return self.train(plan.weights, plan.masks, **plan.kwargs())

  def train_stacked(self, plans: "list[RunPlan]") -> "list[dict]":
    """Trains ``plans`` (one start step; each data seed a stream of its
    own) side by side; returns each one's metrics as :meth:`train` would,
    each with its trained ``weights``. Only when :meth:`can_stack` says
    so."""
    raise NotImplementedError

  def can_stack(self, plans: "list[RunPlan]") -> bool:
    """Whether ``plans`` can train side by side here."""
    del plans
    return False

  def weights(self) -> Weights:
    """The weights the last :meth:`train` ended with."""
    raise NotImplementedError

  def model(self):
    """The compiled model every run trains (to evaluate weights on)."""
    raise NotImplementedError

  def fresh_weights(self, seed: int) -> Weights:
    """A new initialisation of the model from ``seed``."""
    raise NotImplementedError

  def rewind_weights(self) -> Weights:
    """The experiment's rewind point (rewind.npz)."""
    raise NotImplementedError

  def write_npz(self, path: str, arrays: Weights) -> None:
    raise NotImplementedError


@dataclasses.dataclass
class Level:
  """What a branch gets: one level of an IMP experiment."""
  number: int
  directory: str  # The branch's own directory, level_NN/<name>/.
  mask: Weights  # The ticket's mask at this level.
  rewind_step: int
  seed: int  # --seed
  task: Any  # lottery.task.Task
  lottery: Any  # LotteryHparams
  trainer: Trainer
  # The ticket's trained weights when it trained from the rewind point in
  # this process (else None): the first copy of an instability analysis.
  ticket_weights: Optional[Weights] = None
  # The ticket trains side by side with this branch's planned run (its
  # trained weights are in ticket_weights by the time finish() is called).
  ticket_beside: bool = False


class Branch:
  """A run beside a level's ticket; subclasses set ``name`` and ``help``."""

  name: ClassVar[str] = ""
  help: ClassVar[str] = ""
  #: Runs at level 0 (the dense network) too; controls of a mask do not.
  at_level_0: ClassVar[bool] = False
  #: Its metrics hold a trained network's accuracy (summary rows, plots).
  reports_accuracy: ClassVar[bool] = True
  #: Uses ``Level.ticket_weights`` (the runner keeps a copy only then).
  wants_ticket_weights: ClassVar[bool] = False

  def plan(self, level: Level) -> Optional[RunPlan]:
    """The branch's one training run, if that is what it trains (its
    metrics then come from that run, through :meth:`finish`): the runner
    may train it beside the ticket. None (the default): the runner calls
    :meth:`run`."""
    del level
    return None

  def finish(self, level: Level, out: dict) -> dict:
    """The branch's metrics from its planned run's result ``out`` (as
    :meth:`Trainer.train` returns it, with the trained ``weights``, which
    are not kept): by default the run's own."""
    del level
    return out

  def run(self, level: Level) -> dict:
    """Trains what the branch trains; returns its metrics (a JSON dict)."""
    plan = self.plan(level)
    if plan is None:
      raise NotImplementedError
    out = level.trainer.train_plan(plan)
    out["weights"] = level.trainer.weights()
    out = self.finish(level, out)
    out.pop("weights", None)
    return out

  def save(self, directory: str, metrics: dict, writer) -> None:
    """Writes the branch's results through ``writer`` (a store.Writer);
    ``metrics.json`` last (it marks the branch done)."""
    writer.write_json(paths.metrics(directory), metrics)

  def level_summary(self, metrics: dict) -> Optional[dict]:
    """What to add to the level's own metrics.json under ``name`` (None:
    nothing)."""
    del metrics
    return None
