"""The controls of Frankle & Carbin (2019): is it the mask, or the weights?"""
from lottery_tf import paths, pruning
from lottery_tf.lottery.branch.base import Branch, Level, RunPlan
from lottery_tf.lottery.branch.registry import register

# Seed offsets of the runs that must not share an initialisation or mask with
# the ticket.
REINIT_SEED_OFFSET = 10_007
RANDOM_MASK_SEED_OFFSET = 20_011


@register
class Reinit(Branch):
  """The ticket's mask on a fresh initialisation, trained from the rewind
  step like the ticket."""
  name = "reinit"
  help = "same mask, fresh initialisation"

  def plan(self, level: Level) -> RunPlan:
    seed = level.seed + REINIT_SEED_OFFSET
    return RunPlan(level.trainer.fresh_weights(seed), level.mask,
                   start=level.rewind_step, seed=seed,
                   run_dir=level.directory)


@register
class RandomMask(Branch):
  """A random mask with the ticket's per-layer density, on the rewind
  weights."""
  name = "random_mask"
  help = "random mask at the ticket's per-layer density, rewind weights"

  def plan(self, level: Level) -> RunPlan:
    seed = level.seed + RANDOM_MASK_SEED_OFFSET + level.number
    masks = pruning.random_masks(level.mask, seed=seed)
    level.trainer.write_npz(paths.mask(level.directory), masks)
    return RunPlan(level.trainer.rewind_weights(), masks,
                   start=level.rewind_step, seed=seed,
                   run_dir=level.directory)
