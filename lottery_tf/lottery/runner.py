"""Iterative magnitude pruning with rewinding: the level loop, resumably.

Each level trains its ticket (the mask on the rewind weights), prunes the
next level's mask from the trained weights, then runs the level's branches
(controls and measurements, :mod:`lottery_tf.lottery.branch`). Where level 0
starts comes from a rewind-point provider (:mod:`.rewind_point`; a
pre-training phase on a data diet, :mod:`lottery_tf.diet.pretrain`), handed
in by whoever builds the runner (:mod:`lottery_tf.descriptions`). A run
trains the session model (:mod:`.session`); what is on disk and whether it
is whole is :mod:`.level_files`, the SavedModels :mod:`.saving`, the
directory layout :mod:`lottery_tf.paths`.

Every training run seeds itself, so a level re-run after a crash gives the
same numbers as an uninterrupted run, whatever ran before it in the process.
With --checkpoint_every, a run cut off mid-level resumes from its latest
checkpoint (``<run dir>/checkpoint/``, deleted when the run is done).

Under --strategy=multi_worker every worker runs this same code in lockstep
(training, evaluation and saving are collective); only the chief writes the
experiment directory. The other workers decide what is done from the
chief's files and write their own masks and rewind weights, and their
checkpoints and SavedModels (which must be saved by every worker), to a
scratch directory (the runner's ``store.Writer``: ``OUTPUT_DIR/.worker_<i>/``
from the CLI, else ``.worker_<i>/`` inside the experiment); the SavedModels
are deleted at once, and no metrics are written there.
"""
import contextlib
import dataclasses
import os
import time
from typing import Dict, List, Optional

import numpy as np

from lottery_tf import paths, pruning
from lottery_tf.foundations import fs, provenance, store, tensorboard, workspace
from lottery_tf.foundations import hparams as hp_lib
from lottery_tf._keras import tf
from lottery_tf.errors import UserError
from lottery_tf.lottery import branch as branch_lib
from lottery_tf.lottery import report
from lottery_tf.lottery import rewind_point as rewind_point_lib
from lottery_tf.lottery.hparams import LotteryHparams
from lottery_tf.lottery.level_files import LevelFiles
from lottery_tf.lottery.rewind_point import RewindPoint
from lottery_tf.lottery.saving import Saver
from lottery_tf.lottery.session import Session, wrapped_model
from lottery_tf.lottery.task import Task
from lottery_tf.training import distribute, durations
from lottery_tf.training.rewind import RewindCallback, snapshot

__all__ = ["LotteryRunner", "RewindPoint"]


@dataclasses.dataclass
class _Stack:
  """A level's runs planned to train side by side: the ticket's plan
  first (if it is unfinished), then the branches' (``planned``: each
  branch with the Level it planned from)."""
  ticket: bool
  masks: Dict[str, np.ndarray]
  began: float
  plans: List[branch_lib.RunPlan]
  planned: list = dataclasses.field(default_factory=list)


class LotteryRunner:
  """Runs levels 0..N of IMP for one task, skipping finished work.

  Refuses bad hparams before anything is written: the groups' own checks
  (also made by :meth:`lottery_tf.descriptions.Find.of`, before any data is
  read), then what needs the task: the rewind step against the training
  length, layer rates against the model's layers.
  """

  def __init__(self, exp_dir: str, task: Task, php, lhp: LotteryHparams, *,
               rewind_point: Optional[RewindPoint] = None,
               writer: Optional[store.Writer] = None,
               quiet: bool = False, log=print, save_tickets: bool = True,
               label: str = "find", replicate: int = 0):
    php.validate()
    lhp.validate()
    self.exp_dir = exp_dir
    self.task = task
    self.php = php
    self.lhp = lhp
    self.log = log
    self.label = label  # What the header calls this run.
    # Which replicate of its recipe this is (find --replicates), recorded in
    # every run's metrics.json and so in summary.csv.
    self.replicate = replicate
    self.save_tickets = save_tickets
    self.branches = [branch_lib.get(name)() for name in lhp.branch_list()]
    self.rewind_step = task.steps(lhp.rewind, "--rewind")
    # Tickets on a data diet: the rewind point comes after a pre-training of
    # t steps (on a subset), at t unless --rewind asks for a later step.
    if rewind_point is None and durations.parse(lhp.pretrain_steps).value:
      # Pre-training asked for but no phase handed in: it would silently
      # not happen.
      raise ValueError(
          "--pretrain_steps needs its rewind point: build the runner with "
          "descriptions.Find(...).runner() or pass "
          "rewind_point=diet.pretrain.plan(task, lhp)")
    self.pretraining = rewind_point
    pretrain_step = rewind_point.steps if rewind_point else 0
    if pretrain_step:
      if 0 < self.rewind_step < pretrain_step:
        raise UserError(
            f"--rewind: {lhp.rewind} comes before the end of the "
            f"pre-training (--pretrain_steps={lhp.pretrain_steps}); use 0it "
            "(rewind to the pre-trained weights) or a later step")
      self.rewind_step = max(self.rewind_step, pretrain_step)
    if self.rewind_step >= task.total_steps:
      raise UserError(
          f"--rewind: {lhp.rewind} ({self.rewind_step} steps) is not before the "
          f"end of training ({task.total_steps} steps)")
    if php.output_fraction() is not None or php.conv_fraction() is not None:
      # A layer rate with no layer to act on, before anything is written. In
      # a throwaway graph (no weights are allocated), in float32: Keras'
      # TF1-style layers there do not cast. (A model left with nothing to
      # prune is refused by pruning.wrap when the first run starts.)
      with tf.Graph().as_default():
        pruning.check_rates(
            wrapped_model(task, php, task.thp.seed, float32=True), php)
    strategy = distribute.setup(task.thp)
    self.is_chief = distribute.is_chief(strategy)
    self.writer = writer or store.LOCAL
    if not self.is_chief and not self.writer.redirected:
      # (The CLI hands in one for the whole output directory.)
      self.writer = store.Writer(exp_dir, os.path.join(
          exp_dir, f".worker_{distribute.worker_index(strategy)}"))
    self.files = LevelFiles(exp_dir, self.writer, log)
    self.session = Session(task, php, rewind_step=self.rewind_step,
                           read_rewind=self.files.rewind_weights,
                           writer=self.writer, quiet=quiet, log=log)
    self.saver = Saver(task, php, lhp, rewind_step=self.rewind_step,
                       provenance=self.provenance, writer=self.writer,
                       is_chief=self.is_chief)

  # -- bookkeeping -----------------------------------------------------------

  def hparams_dict(self) -> dict:
    t = self.task
    return hp_lib.to_json_dict(t.dhp, t.mhp, t.thp, self.php, self.lhp)

  def provenance(self) -> dict:
    return {"hparams": self.hparams_dict(), "seed": self.task.thp.seed,
            "versions": provenance.library_versions(),
            "data": self.task.info.to_dict()}

  def _accuracy_runs(self) -> List[str]:
    """The branches whose runs are rows of the summary."""
    return [b.name for b in self.branches if b.reports_accuracy]

  def _write_json(self, path: str, payload) -> None:
    """Metrics: only the chief writes them (other workers' writer keeps
    their arrays in their scratch)."""
    if self.is_chief:
      self.writer.write_json(path, payload)

  def _branches_at(self, level: int):
    return [b for b in self.branches if level > 0 or b.at_level_0]

  def _mask(self, level: int) -> Dict[str, np.ndarray]:
    return self.files.mask(level, self.session.masks())

  # -- levels ----------------------------------------------------------------

  def run_level(self, level: int, stacked=None) -> dict:
    """Trains the level's ticket (unless done), then its missing branches;
    the ticket and the branches that are one training run each side by
    side where the session can (``--stack_runs``). ``stacked``: what
    :meth:`_run_stacked` returns, if they trained already
    (:func:`run_side_by_side`)."""
    stacked, trained = stacked or self._run_stacked(level)
    if not stacked and not self.files.ticket_done(level):
      trained = self._run_ticket(level)
    for b in self._branches_at(level):
      self._run_branch(level, b, trained)
    path = paths.metrics(paths.level(self.exp_dir, level))
    return self.writer.read_json(path) if fs.exists(path) else None

  def _level(self, level: int, b: branch_lib.Branch, trained=None,
             masks=None):
    """What branch ``b`` gets (``masks``: the level's, if read already)."""
    return branch_lib.Level(
        number=level, directory=paths.run(self.exp_dir, level, b.name),
        mask=self._mask(level) if masks is None else masks,
        rewind_step=self.rewind_step,
        seed=self.task.thp.seed, task=self.task, lottery=self.lhp,
        trainer=self.session, ticket_weights=trained)

  def _stack(self, level: int, min_runs: int = 2) -> Optional[_Stack]:
    """The level's unfinished ticket and the branches that are one run
    each, planned, if they are ``min_runs`` or more and (alone: two or
    more) would stack here; else None."""
    if level == 0 or self.task.thp.stack_runs == "off":
      return None  # Level 0 takes the rewind point: one run.
    ticket = not self.files.ticket_done(level)
    # A branch that wants the ticket's trained weights (lmc) only beside
    # the ticket.
    todo = [b for b in self._branches_at(level)
            if not self.files.run_done(level, b.name)
            and (ticket or not b.wants_ticket_weights)]
    if len(todo) + ticket < min_runs:
      return None
    began = time.time()
    masks = self._mask(level)
    seed = self.task.thp.seed
    ticket_plan = branch_lib.RunPlan(
        self.session.rewind_weights(), masks, start=self.rewind_step,
        seed=seed, data_seed=seed, run_dir=paths.level(self.exp_dir, level))
    # Planning writes what a branch writes before its run (a random mask):
    # only if the stack could be.
    if min_runs > 1 and not self.session.can_stack(
        [ticket_plan] * (len(todo) + ticket)):
      return None
    job = _Stack(ticket=ticket, masks=masks, began=began,
                 plans=[ticket_plan] if ticket else [])
    for b in todo:
      lv = self._level(level, b, masks=masks)
      lv.ticket_beside = ticket
      plan = b.plan(lv)
      if plan is not None:
        if plan.data_seed is None:  # Explicit: it may stack with others'.
          plan.data_seed = seed
        job.planned.append((b, lv))
        job.plans.append(plan)
    return job if len(job.plans) >= min_runs else None

  def _run_stacked(self, level: int):
    """The level's :meth:`_stack`, trained side by side if the session can.
    Returns (whether it ran them, what :meth:`_finish_ticket` returned)."""
    job = self._stack(level)
    if job is None or not self.session.can_stack(job.plans):
      return False, None  # The ticket, then the branches, one by one.
    return True, self._finish_stack(level, job,
                                    self.session.train_stacked(job.plans))

  def _finish_stack(self, level: int, job: _Stack, outs: List[dict]):
    """Each run's files from its stacked result (``job.plans``' order);
    returns the ticket's trained weights (None if it was done)."""
    outs = list(outs)
    trained = None
    if job.ticket:
      out = outs.pop(0)
      weights = out.pop("weights")
      self.session.load(weights, job.masks)
      trained = self._finish_ticket(level, out, self.rewind_step, job.began)
      trained = weights if trained is None else trained
    for (b, lv), out in zip(job.planned, outs):
      lv.ticket_weights = trained
      out = b.finish(lv, out)
      out.pop("weights", None)
      self._finish_branch(level, b, out, job.began)
    return trained

  def _run_ticket(self, level: int) -> Optional[Dict[str, np.ndarray]]:
    """Trains the level's ticket, writes its files (metrics.json last);
    returns its trained weights if it trained from the rewind point (the
    first copy of an instability analysis), else None."""
    d = paths.level(self.exp_dir, level)
    seed = self.task.thp.seed
    began = time.time()
    session = self.session
    masks = self._mask(level)
    if level == 0:
      start, weights = 0, session.init_weights
      if self.pretraining is not None and self.pretraining.separate:
        start = self.pretraining.steps
        weights = rewind_point_lib.pretrained(
            self.pretraining, session, self.files, masks,
            is_chief=self.is_chief)
      cb = RewindCallback(self.rewind_step,
                          self.writer.path(paths.rewind(self.exp_dir)))
      out = session.train(weights, masks, start=start, seed=seed,
                          rewind_cb=cb, run_dir=d)
      session.set_rewind_weights(cb.weights)
      self.writer.write_npz(paths.mask(d), masks)
    else:
      start = self.rewind_step
      out = session.train(session.rewind_weights(), masks, start=start,
                          seed=seed, run_dir=d)
    return self._finish_ticket(level, out, start, began)

  def _finish_ticket(self, level: int, out: dict, start: int, began: float
                     ) -> Optional[Dict[str, np.ndarray]]:
    """The ticket's files from its run (the session model holds its trained
    weights under the level's mask)."""
    d = paths.level(self.exp_dir, level)
    session = self.session
    masks = self._mask(level)
    model = session.model()
    trained = None
    if start == self.rewind_step and any(
        b.wants_ticket_weights for b in self._branches_at(level)):
      trained = snapshot(model)
    if self.save_tickets:
      self.saver.trained(paths.trained(self.exp_dir, level), model, level,
                         out["density"])
    # Always, even at the last level asked for: a later run with a larger
    # --levels (levels are not in the hash) extends this experiment. Kept
    # in this level's directory, so none exists beyond the last level.
    # From the trained weights, identical on every replica and worker.
    next_masks = pruning.prune(model, masks, self.php)
    self.writer.write_npz(paths.next_mask(self.exp_dir, level), next_masks)
    if self.save_tickets:
      self.saver.ticket(paths.ticket(self.exp_dir, level),
                        session.load(session.rewind_weights(), masks), level,
                        out)
    out.update(level=level, run=paths.TICKET_RUN,
               wall_seconds=time.time() - began,
               rewind_step=self.rewind_step, replicate=self.replicate,
               **self.provenance())
    if self.pretraining is not None:
      out["pretraining"] = self.pretraining.to_dict()
    # Written last: its presence marks the ticket of this level done.
    self._write_json(paths.metrics(d), out)
    session.clear_checkpoint(d)
    return trained

  def _run_branch(self, level: int, b: branch_lib.Branch, trained) -> None:
    """Runs branch ``b`` of the level unless its metrics.json is there."""
    if self.files.run_done(level, b.name):
      return
    began = time.time()
    self._finish_branch(level, b, b.run(self._level(level, b, trained)),
                        began)

  def _finish_branch(self, level: int, b: branch_lib.Branch, out: dict,
                     began: float) -> None:
    d = paths.run(self.exp_dir, level, b.name)
    out.update(level=level, run=b.name, wall_seconds=time.time() - began,
               rewind_step=self.rewind_step, replicate=self.replicate,
               **self.provenance())
    if not self.is_chief:
      return
    b.save(d, out, self.writer)
    self.session.clear_checkpoint(d)
    extra = b.level_summary(out)
    if extra is not None:
      level_path = paths.metrics(paths.level(self.exp_dir, level))
      row = self.writer.read_json(level_path)
      row[b.name] = extra
      self.writer.write_json(level_path, row)

  def run(self) -> str:
    if not self.is_chief:
      return self._run()  # The workers of one run share the chief's.
    with workspace.experiment_lock(self.exp_dir):
      return self._run()

  def all_done(self) -> bool:
    """Whether every level (with its branches) is done: read only, no
    lock, so runs that only read this experiment can share it."""
    return all(self._done(lv) for lv in range(self.lhp.levels + 1))

  def _done(self, level: int) -> bool:
    return self.files.level_done(
        level, [b.name for b in self._branches_at(level)])

  def _run(self) -> str:
    runs = self._begin()
    spent = []  # Wall seconds of the levels this process trained.
    for level in range(self.lhp.levels + 1):
      self._level_step(level, runs, spent)
    return paths.summary(self.exp_dir)

  def _begin(self) -> List[str]:
    """hparams.json and the header; returns the runs of the summary."""
    self._write_json(paths.hparams(self.exp_dir), self.provenance())
    runs = self._accuracy_runs()
    levels = self.lhp.levels
    if self.is_chief:
      t = self.task
      for line in report.header(
          self.label, self.exp_dir,
          hp_lib.result_fields(t.dhp, t.mhp, t.thp, self.php, self.lhp),
          levels, [lv for lv in range(levels + 1) if self._done(lv)]):
        self.log(line)
    return runs

  def _level_step(self, level: int, runs: List[str], spent: List[float],
                  stacked=None, began: Optional[float] = None) -> None:
    """Runs the level (:meth:`run_level`), then its line and the summary."""
    levels = self.lhp.levels
    done = self._done(level) and stacked is None
    began = time.time() if began is None else began
    row = self.run_level(level, stacked)
    if not done:
      spent.append(time.time() - began)
    if not self.is_chief:
      acc = (row or {}).get("metrics", {}).get("test_accuracy")
      self.log(f"worker {distribute.worker_index()}: level {level:02d} done"
               + (f", test acc {100 * acc:.2f}%" if acc else ""))
      return
    left = levels - level
    eta = (sum(spent) / len(spent) * left) if spent and left else None
    line = report.level_line(self.exp_dir, level, runs, self.writer,
                             levels=levels, eta_seconds=eta)
    self.log(("(done) " if done else "") + line)
    table = report.write_summary(self.exp_dir, levels, runs, self.writer)
    tensorboard.write_level_summary(self.exp_dir, table, self.writer)


def run_side_by_side(runners: List[LotteryRunner]) -> List[str]:
  """Runs experiments of one recipe under other seeds (``find
  --replicates``) level by level together: each level's stackable runs of
  all of them (:meth:`LotteryRunner._stack`: ticket and controls, each
  experiment on its own data order, a stream of its own) train as one
  stack where the first runner's session can hold them, else each
  experiment's level stacks alone. Every experiment's files are what it
  would write alone; returns their summary.json paths."""
  lead = runners[0]
  with contextlib.ExitStack() as locks:
    for r in runners:
      locks.enter_context(workspace.experiment_lock(r.exp_dir))
    runs = [r._begin() for r in runners]  # pylint: disable=protected-access
    spent = [[] for _ in runners]
    for level in range(lead.lhp.levels + 1):
      began = time.time()
      # Each member's runs, even one (its ticket alone), join the stack.
      jobs = [(r, r._stack(level, min_runs=1)) for r in runners  # pylint: disable=protected-access
              if not r._done(level)]  # pylint: disable=protected-access
      jobs = [(r, job) for r, job in jobs if job is not None]
      plans = [p for _, job in jobs for p in job.plans]
      stacked = {}
      if len(jobs) > 1 and lead.session.can_stack(plans):
        outs = lead.session.train_stacked(plans)
        for r, job in jobs:
          n = len(job.plans)
          stacked[id(r)] = (True, r._finish_stack(level, job, outs[:n]))  # pylint: disable=protected-access
          outs = outs[n:]
      for k, r in enumerate(runners):
        r._level_step(level, runs[k], spent[k], stacked.get(id(r)),  # pylint: disable=protected-access
                      began if id(r) in stacked else None)
  return [paths.summary(r.exp_dir) for r in runners]
