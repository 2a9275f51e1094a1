"""Entry point: ``lottery_tf COMMAND [--flagfile=F] [--flags...]``.

Bad input of any kind ends with exit status 2 and one line on stderr that
names the flag or file; a Python traceback means a bug in lottery_tf.
"""
import contextlib
import io
import os
import re
import sys

# Keras 2 must be chosen before anything imports tensorflow.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from absl import logging  # noqa: E402

from lottery_tf import presets  # noqa: E402
from lottery_tf.errors import RunFailed, UserError  # noqa: E402

FLAGS = flags.FLAGS
USAGE = ("usage: lottery_tf {%s} [--preset=NAME | --flagfile=FILE] "
         "[--flags...]; `lottery_tf COMMAND --help` lists a command's flags, "
         "`lottery_tf --helpfull` every flag")


def _fail(message: str) -> None:
  sys.stderr.write(f"lottery_tf: error: {' '.join(str(message).split())}\n")
  sys.stderr.flush()
  sys.exit(2)


#: Commands that never load TensorFlow: they answer in a second.
_NO_TENSORFLOW = ("list", "presets")

_HELP = ("--help", "-h", "-?", "--helpfull", "--helpshort", "--helpxml")


def _commands():
  """The commands module, which defines every flag; imported on first use so
  that the plain `lottery_tf list` (see :func:`run`) loads none of it."""
  from lottery_tf.cli import commands  # pylint: disable=g-import-not-at-top
  return commands


def _command_help(argv) -> None:
  """``lottery_tf COMMAND --help``: that command's flags, then exit 0."""
  commands = _commands()
  words = [a for a in argv[1:] if not a.startswith("-")]
  if (words and words[0] in commands.COMMANDS
      and any(a.split("=")[0] in ("--help", "-h", "-?", "--helpshort")
              for a in argv[1:])):
    sys.stdout.write(commands.help_for(words[0]))
    sys.exit(0)


def flag_error_message(e: Exception) -> str:
  """absl's parse error as our one line, naming the flag."""
  # absl's own prefix ("ERROR:: Unable to open flagfile") is not ours.
  message = str(e)
  if message.startswith("ERROR::"):
    message = message[len("ERROR::"):].strip()
  # A declared interval's validator (cli.flags): "flag --x=v: must be in
  # [0, inf), got v" -> "--x: must be ...", the first if several.
  bounds = re.match(r"flag --(\w+)=.*?: (--\1: )?(.*)",
                    message.split("\n")[0])
  if bounds:
    message = f"--{bounds.group(1)}: {bounds.group(3)}"
  if message.startswith("Unable to open flagfile"):
    message = ("--flagfile: cannot open it: " + message.split(":", 1)[1]
               .strip() + "; `lottery_tf presets` lists the presets")
  return message


def _parse(argv):
  _command_help(argv)
  try:
    # --preset=NAME and --flagfile=NAME (a preset's name, not a path) read
    # the installed preset: they work from any directory.
    argv = presets.resolve_argv(argv)
    return FLAGS(argv)
  except UserError as e:
    _fail(str(e))
  except flags.Error as e:
    _fail(flag_error_message(e))
  except SystemExit:
    # absl exits 1 after printing help; asking for help is not an error.
    if any(a.split("=")[0] in _HELP for a in argv[1:]):
      sys.exit(0)
    raise
  return None


def _disk_full(e: BaseException):
  """The path (or "the output directory") of a full-disk error, else None.

  Python reports ENOSPC (and EDQUOT) as OSError; TensorFlow's own writers
  (checkpoints, SavedModels) as ResourceExhaustedError or an OpError
  whose message says so.
  """
  import errno  # pylint: disable=g-import-not-at-top
  from lottery_tf._keras import tf  # pylint: disable=g-import-not-at-top
  if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
    return (str(e.filename).split("/.tmp-")[0] if e.filename
            else FLAGS.output_dir)
  if isinstance(e, tf.errors.OpError):
    text = str(e.message if hasattr(e, "message") else e)
    if "No space left" in text or "ENOSPC" in text or isinstance(
        e, tf.errors.ResourceExhaustedError) and "write" in text.lower():
      import re  # pylint: disable=g-import-not-at-top
      m = re.search(r"(?:^|\s)(/[^\s;,']+)", text)
      # The directory a temporary file was being written in, not its name.
      return m.group(1).split("/.tmp-")[0] if m else FLAGS.output_dir
  return None


def _op_error():
  """TensorFlow's OpError, if TensorFlow is loaded (commands such as `list`
  never load it), else an exception nothing raises."""
  tf = sys.modules.get("tensorflow")
  return tf.errors.OpError if tf is not None else _NeverRaised


class _NeverRaised(Exception):
  pass


def _main(argv):
  logging.set_verbosity(logging.ERROR)
  commands = _commands()
  words = argv[1:]
  names = ", ".join(commands.COMMANDS)
  if not words:
    _fail(f"no command given; choose one of: {names}")
  if len(words) > 1:
    _fail(f"unexpected argument(s) {' '.join(words[1:])!r} after the command "
          f"{words[0]!r}; flags are written --name=value")
  command = commands.COMMANDS.get(words[0])
  if command is None:
    _fail(f"unknown command {words[0]!r}; choose one of: {names}")
  if words[0] not in _NO_TENSORFLOW:
    from lottery_tf._keras import tf  # pylint: disable=g-import-not-at-top
    tf.get_logger().setLevel("ERROR")
  # --quiet: nothing but the last line (errors still go to stderr).
  hush = (contextlib.redirect_stdout(io.StringIO()) if FLAGS.quiet
          else contextlib.nullcontext())
  try:
    commands.check_flags(words[0])
    commands.setup_runtime(words[0])
    with hush:
      results = command()
  except UserError as e:
    _fail(str(e))
  except RunFailed as e:
    sys.stderr.write(f"lottery_tf: {e}\n")
    sys.exit(1)
  except (OSError, _op_error()) as e:
    full = _disk_full(e)
    if full is None:
      raise
    _fail(f"{full}: no space left on the device (results written so far are "
          "whole); free some space and run the same command again: it "
          "resumes")
  except KeyboardInterrupt:
    sys.stderr.write("lottery_tf: interrupted; run the same command again to "
                     "resume\n")
    sys.exit(130)
  if results:
    print(f"results: {results}", flush=True)


def run():
  if sys.argv[1:] == ["list"]:
    # The common case answers from the stored catalog before the flag
    # definitions (and with them TensorFlow) are imported: well under 3 s.
    from lottery_tf import catalog  # pylint: disable=g-import-not-at-top
    print("\n".join(catalog.lines(catalog.load())), flush=True)
    sys.exit(0)
  app.run(_main, flags_parser=_parse)


if __name__ == "__main__":
  run()
