"""Branches of an IMP level: controls and measurements beside the ticket.

    from lottery_tf.lottery import branch
    branch.names()             # ['reinit', 'random_mask', 'lmc']
    branch.get("reinit")       # the Branch subclass

See :mod:`~lottery_tf.lottery.branch.base` for what a branch gets and
returns, and how to add one.
"""
from lottery_tf.lottery.branch.base import Branch, Level, RunPlan, Trainer
from lottery_tf.lottery.branch.registry import check, get, names, register

# Importing a module registers its branches.
from lottery_tf.lottery.branch import controls, lmc  # noqa: E402,F401  pylint: disable=wrong-import-position

__all__ = ["Branch", "Level", "RunPlan", "Trainer", "check", "get", "names", "register"]
