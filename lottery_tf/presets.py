"""The paper presets: the absl flagfiles of ``flags/``, usable from anywhere.

A preset is one experiment of a paper, ``flags/NAME.cfg``; its leading
comment lines say what it reproduces (``# Paper:``), the result to expect
(``# Expected``), the hardware it was sized for (``# Hardware:``) and how to
run it (``# Run:``). The files are installed with the package (as
``lottery_tf/presets/``, see setup.py); in a source checkout or an editable
install they are read from ``flags/`` beside the package. So after
``pip install``, ``lottery_tf find --preset=morcos_vgg19_cifar10`` (or
``--flagfile=morcos_vgg19_cifar10``) works from any directory.
"""
import os
import re
from typing import Dict, List, Optional, Sequence

from lottery_tf.errors import UserError

SUFFIX = ".cfg"
_HEADER_FIELDS = ("paper", "expected", "hardware", "run")


def directory() -> str:
  """Where the presets are: the installed copy, else the checkout's flags/."""
  here = os.path.dirname(os.path.abspath(__file__))
  for candidate in (os.path.join(here, "presets"),
                    os.path.join(os.path.dirname(here), "flags")):
    if os.path.isdir(candidate) and any(
        f.endswith(SUFFIX) for f in os.listdir(candidate)):
      return candidate
  raise UserError("--preset: no presets are installed with lottery_tf "
                  f"(looked in {here}/presets and the checkout's flags/)")


def names() -> List[str]:
  return sorted(f[:-len(SUFFIX)] for f in os.listdir(directory())
                if f.endswith(SUFFIX))


def _bare(name: str) -> str:
  base = os.path.basename(name)
  return base[:-len(SUFFIX)] if base.endswith(SUFFIX) else base


def path(name: str, flag: str = "--preset") -> str:
  """The flagfile of preset ``name`` (``NAME``, ``NAME.cfg`` or
  ``flags/NAME.cfg``); UserError naming the flag if there is none."""
  bare = _bare(name)
  candidate = os.path.join(directory(), bare + SUFFIX)
  if bare and os.path.isfile(candidate):
    return candidate
  raise UserError(f"{flag}: {name!r} is neither a file nor a preset; "
                  "`lottery_tf presets` lists the presets")


# "Paper:", "Expected [R]:", "Expected (README, ...):", "Weight decay:" ...
_KEY = re.compile(r"^([A-Z][A-Za-z -]*?)(?: \[[^\]]*\]| \([^)]*\))?:\s*(.*)$")


def header(name: str) -> Dict[str, str]:
  """The preset's leading comment block, by field (``paper``, ``expected``,
  ``hardware``, ``run``; continuation lines joined), plus ``text``.

  A line ``Key: ...`` starts a field; other lines continue the last one.
  Without a ``Paper:`` line, the lines before the first field stand for it.
  """
  fields: Dict[str, str] = {}
  lines: List[str] = []
  intro: List[str] = []
  current: Optional[str] = None
  with open(path(name), encoding="utf-8") as f:
    for line in f:
      if not line.startswith("#"):
        break
      text = line[1:].strip()
      lines.append(text)
      match = _KEY.match(text)
      if match:
        key = match.group(1).split(" ")[0].lower()
        current = key if key in _HEADER_FIELDS else None
        if current:
          fields[current] = match.group(2)
        elif not fields:
          intro.append(text)
      elif current:
        fields[current] += " " + text
      elif not fields:
        intro.append(text)
  if "paper" not in fields and intro:
    fields["paper"] = " ".join(intro)
  fields["text"] = "\n".join(lines)
  return fields


def _value(args: Sequence[str], i: int, flag: str):
  """(value, next index) of ``--flag=value`` or ``--flag value`` at i."""
  arg = args[i]
  if "=" in arg:
    return arg.split("=", 1)[1], i + 1
  if i + 1 >= len(args):
    raise UserError(f"{flag}: needs a value ({flag}=NAME); `lottery_tf "
                    "presets` lists the presets")
  return args[i + 1], i + 2


def resolve_argv(argv: Sequence[str]) -> List[str]:
  """``--preset=NAME``, and ``--flagfile=X`` where X is not a file but a
  preset's name, become ``--flagfile=<the preset's path>`` in place (so
  flags after it still override it, as with any flagfile)."""
  out = [argv[0]] if argv else []
  args = list(argv[1:])
  i = 0
  while i < len(args):
    arg = args[i]
    for flag in ("--preset", "--flagfile"):
      if arg == flag or arg.startswith(flag + "="):
        value, i = _value(args, i, flag)
        if flag == "--flagfile" and os.path.isfile(os.path.expanduser(value)):
          check_flagfile(os.path.expanduser(value))
          out.append(f"--flagfile={value}")
        elif flag == "--flagfile" and os.sep in value and not _is_preset_path(
            value):
          raise UserError(f"--flagfile: cannot open {value!r}: no such file; "
                          "`lottery_tf presets` lists the presets")
        else:
          out.append(f"--flagfile={path(value, flag)}")
        break
    else:
      out.append(arg)
      i += 1
  return out


def check_flagfile(path: str, including=()) -> None:
  """UserError naming the flagfile if it cannot be read as UTF-8 text, or
  if it includes itself (directly or through the flagfiles it names); absl
  would print a traceback for the first and only warn about the second."""
  real = os.path.realpath(path)
  chain = tuple(including) + (real,)
  if real in including:
    raise UserError(f"--flagfile: {path} includes itself (through "
                    f"{' -> '.join(map(os.path.basename, chain))})")
  try:
    with open(path, "rb") as f:
      text = f.read().decode("utf-8")
  except OSError as e:
    raise UserError(f"--flagfile: cannot read {path} ({e.strerror})") from e
  except UnicodeDecodeError as e:
    raise UserError(f"--flagfile: {path} is not UTF-8 text (byte "
                    f"{e.start})") from e
  for line in text.splitlines():
    line = line.strip()
    if line.startswith("--flagfile="):
      inner = os.path.expanduser(line.split("=", 1)[1])
      if not os.path.isabs(inner):
        inner = os.path.join(os.path.dirname(path), inner)
      if os.path.isfile(inner):
        check_flagfile(inner, chain)


def _is_preset_path(value: str) -> bool:
  # ``flags/NAME.cfg`` as the presets' "Run:" lines write it, from a
  # directory other than the checkout.
  parent = os.path.basename(os.path.dirname(os.path.normpath(value)))
  return parent == "flags" and os.path.isfile(
      os.path.join(directory(), _bare(value) + SUFFIX))
