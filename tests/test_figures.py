"""Figures fit for a paper: titles in words, a dense line, error bars only
where there are replicates."""
from matplotlib.container import ErrorbarContainer

from lottery_tf.foundations import figures
from lottery_tf.lottery import report

HPARAMS = {"hparams": {
    "dataset": {"dataset": "mnist_5k"}, "model": {"model": "lenet_300_100"},
    "training": {"optimizer": "sgd", "lr": 0.1, "training_steps": "2ep"},
    "pruning": {"pruning_strategy": "global", "pruning_fraction": 0.2},
    "lottery": {"rewind": "0it"}}}


def _rows(std=None):
  rows = []
  for level, (d, t, r) in enumerate([(1.0, .9, .9), (.8, .91, .88),
                                     (.64, .92, .85)]):
    for run, acc in (("ticket", t), ("reinit", r)):
      if level == 0 and run == "reinit":
        continue
      rows.append({"level": level, "run": run, "density": d,
                   "test_accuracy": acc, "test_accuracy_std": std})
  return rows


def _drawn(monkeypatch, table, tmp_path):
  got = {}

  def spy(fig, path, *args, **kwargs):
    ax = fig.axes[0]
    got["title"] = ax.get_title()
    got["lines"] = {l.get_label(): list(l.get_ydata()) for l in ax.get_lines()}
    got["errorbars"] = [c for c in ax.containers
                        if isinstance(c, ErrorbarContainer)]
    figures.pyplot().close(fig)

  monkeypatch.setattr(figures, "save_figure", spy)
  report.plot_accuracy_vs_density(table, str(tmp_path / "p.png"),
                                  title=report.title(HPARAMS))
  return got


def test_title_is_in_words_and_tolerates_missing_fields():
  assert report.title(HPARAMS) == (
      "LeNet-300-100 on MNIST (5k) — SGD lr 0.1, 2ep, global IMP 20%/level, "
      "rewind to 0it")
  assert report.title({"hparams": {"model": {"model": "conv2"}}}) == "Conv-2"
  assert report.title(None) == "" and report.title({}) == ""


def test_dense_line_and_no_error_bars_without_replicates(monkeypatch,
                                                          tmp_path):
  got = _drawn(monkeypatch, _rows(), tmp_path)
  assert got["title"].startswith("LeNet-300-100 on MNIST (5k)")
  assert "-" not in got["title"].split(" — ")[0].replace("LeNet-300-100", "")
  assert got["lines"]["dense"] == [90.0, 90.0]
  assert got["errorbars"] == []
  got = _drawn(monkeypatch, _rows(std=""), tmp_path)  # grid.csv's empty std
  assert got["errorbars"] == []


def test_error_bars_with_replicates(monkeypatch, tmp_path):
  got = _drawn(monkeypatch, _rows(std=0.01), tmp_path)
  assert len(got["errorbars"]) == 2  # ticket and reinit
  bars = got["errorbars"][0].lines[2][0].get_segments()
  assert [round(s[1][1] - s[0][1], 6) for s in bars] == [2.0, 2.0, 2.0]
