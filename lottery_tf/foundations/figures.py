"""Figures: the plotting backend and atomic figure files."""
import io
import os

from lottery_tf.foundations import store


def pyplot():
  """``matplotlib.pyplot``, on the headless Agg backend unless one is chosen.

  A CLI run gets Agg (no display needed); a notebook that imported pyplot
  (inline figures) keeps its backend, so the library's plots still show.
  """
  import sys  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  if "matplotlib.pyplot" not in sys.modules:
    matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def save_figure(fig, path: str, writer: store.Writer = store.LOCAL,
                **savefig_kwargs) -> None:
  """Saves a matplotlib figure atomically (format from the extension), closes
  it; ``writer`` says where this process writes."""
  plt = pyplot()
  fmt = os.path.splitext(path)[1].lstrip(".") or "png"
  try:
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, **savefig_kwargs)
    writer.write_bytes(path, buf.getvalue())
  finally:
    plt.close(fig)
