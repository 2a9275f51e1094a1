"""Branch registry: ``--controls`` name -> :class:`Branch` subclass."""
from typing import Dict, List, Type

from lottery_tf.errors import UserError
from lottery_tf.lottery.branch.base import Branch

_REGISTRY: Dict[str, Type[Branch]] = {}


def register(cls: Type[Branch]) -> Type[Branch]:
  """Class decorator adding a branch under its ``name``."""
  if not cls.name:
    raise ValueError(f"{cls.__name__}: a branch needs a name")
  if cls.name in _REGISTRY:
    raise ValueError(f"branch {cls.name!r} is registered twice")
  _REGISTRY[cls.name] = cls
  return cls


def unregister(name: str) -> None:
  _REGISTRY.pop(name, None)


def names() -> List[str]:
  return list(_REGISTRY)


def get(name: str) -> Type[Branch]:
  if name not in _REGISTRY:
    raise UserError(f"--controls: unknown branch {name!r}; choose from: "
                    f"{', '.join(_REGISTRY)}")
  return _REGISTRY[name]


def check(names_: List[str]) -> None:
  """UserError naming --controls unless every name is registered."""
  unknown = [n for n in names_ if n not in _REGISTRY]
  if unknown:
    raise UserError(f"--controls: unknown control(s) {sorted(unknown)}; "
                    f"choose from: {', '.join(_REGISTRY)}")
