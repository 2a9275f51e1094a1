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


def _spy_titles(monkeypatch):
  """Every saved figure's titles (its axes' and its suptitle) and legend
  entries, by file name."""
  got = {}

  def spy(fig, path, *args, **kwargs):
    texts = [ax.get_title() for ax in fig.axes]
    if fig._suptitle is not None:  # pylint: disable=protected-access
      texts.append(fig._suptitle.get_text())  # pylint: disable=protected-access
    legends = [t.get_text() for ax in fig.axes if ax.get_legend()
               for t in ax.get_legend().get_texts()]
    got[path.rsplit("/", 1)[-1]] = {"titles": texts, "legend": legends,
                                    "axes": len(fig.axes)}
    figures.pyplot().close(fig)

  monkeypatch.setattr(figures, "save_figure", spy)
  return got


def _grid_row(kind, source, target, acc, level, so="sgd", to="sgd",
              replicates=1):
  return dict(kind=kind, source=source, source_optimizer=so, target=target,
              target_optimizer=to, level=level, density=0.8 ** level,
              accuracy_mean=acc, accuracy_std=0.01 if replicates > 1 else None,
              replicates=replicates)


def test_grid_figures_name_the_model_and_datasets_in_words(monkeypatch,
                                                           tmp_path):
  from lottery_tf.transfer import grid  # pylint: disable=g-import-not-at-top
  got = _spy_titles(monkeypatch)
  rows = [_grid_row("dense", "mnist_5k[5-9]", "mnist_5k[5-9]", .96, 0),
          *[_grid_row(kind, src, "mnist_5k[5-9]", .9, lv, replicates=2)
            for lv in (1, 2) for kind, src in (
                ("transfer", "mnist_5k[0-4]"), ("transfer", "digits"),
                ("own_ticket", "mnist_5k[5-9]"),
                ("random_ticket", "mnist_5k[0-4]"))]]
  grid.plot_grid(rows, str(tmp_path), 2, model="lenet_300_100")
  target = got["transfer_to_mnist_5k_5-9_sgd.png"]
  assert target["titles"][0] == (
      "LeNet-300-100 tickets trained on MNIST (5k) 5-9 with SGD\n"
      "mean ± std of 2 replicates")
  assert set(target["legend"]) == {
      "dense", "from MNIST (5k) 0-4 (SGD)", "from digits (8x8) (SGD)",
      "MNIST (5k) 5-9's own ticket", "random ticket"}
  heat = got["heatmap_level02.png"]["titles"][0]
  assert heat.startswith("LeNet-300-100 tickets: transfer minus random ticket")
  assert "64.0% of weights remaining" in heat


def test_diet_figures_are_titled_in_words(monkeypatch, tmp_path):
  import numpy as np  # pylint: disable=g-import-not-at-top
  from lottery_tf.diet import plots, study  # pylint: disable=g-import-not-at-top
  got = _spy_titles(monkeypatch)
  provenance = {"hparams": dict(HPARAMS["hparams"],
                                lottery={"pretrain_steps": "20it"})}
  rows = [{"arm": arm, "level": lv, "density": 0.8 ** lv,
           "test_accuracy": .9, "instability": .01, "connected_fraction": .9}
          for arm in ("init", "random:0.1", "easy:400") for lv in (0, 1)]
  study.plot_comparison(rows, str(tmp_path / "comparison.png"),
                        title=study._title(provenance))  # pylint: disable=protected-access
  comparison = got["comparison.png"]
  assert comparison["titles"][-1] == (
      "LeNet-300-100 on MNIST (5k) — SGD lr 0.1, 2ep, global IMP 20%/level\n"
      "IMP from rewind points pre-trained 20 steps on each arm's data")
  assert comparison["legend"] == ["none (rewind to init)", "random 10%",
                                  "easiest 400", "dense"]
  # One distribution, and one small histogram per class (not ten overlaid).
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(10), 50)
  plots.histogram(rng.random(500), labels, str(tmp_path / "h.png"),
                  title="EL2N scores of 500 examples")
  hist = got["h.png"]
  assert hist["axes"] == 1 + 10
  assert hist["titles"][0] == "EL2N scores of 500 examples"
  assert hist["titles"][1:] == [f"class {c}" for c in range(10)]
  plots.histogram(rng.random(500), np.arange(500) % 20,
                  str(tmp_path / "h20.png"))
  assert got["h20.png"]["axes"] == 1
