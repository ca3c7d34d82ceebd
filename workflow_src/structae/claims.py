"""Each paper's claims, and our notes', checked against what this run measured: the report's claims pages.

A claim names the experiments and metrics it rests on and how to judge it: a bar (`AtLeast`) or one model
or setting against another (`Beats`). `check` reads the tidy table (structae.tables: one row per experiment,
metric and seed) and says whether the claim holds at this run's scale, with our number as mean ± std over
seeds: holds, does not hold, or undecided where the seeds' spread cannot tell (`verdict`), and marked where
it rests on one seed. A claim whose experiments this run did not train says so; nothing is filled in.
"""

from __future__ import annotations

import base64
import math
import re
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pandas as pd

from structae.tables import html_page, mean_std, own_test

LAST = "_tlast"  # a metric suffix meaning "after the last refinement" (IODINE's ari_fg_t0 … ari_fg_tT)


@dataclass(frozen=True)
class Measured:
    mean: float
    std: float  # NaN with one seed
    seeds: int

    def text(self) -> str:
        return f"{mean_std(self.mean, self.std)} ({self.seeds} seed{'s' if self.seeds != 1 else ''})"


def measured(table: pd.DataFrame, experiment: str, metric: str) -> Measured | None:
    table = own_test(table)  # a claim is judged on the test split; a fresh split's row is a check beside it
    rows = table[table["experiment"] == experiment]
    if metric.endswith(LAST):
        stem = metric.removesuffix(LAST)
        passes = [int(m[len(stem) + 2:]) for m in rows["metric"].unique() if re.fullmatch(rf"{stem}_t\d+", m)]
        metric = f"{stem}_t{max(passes)}" if passes else metric
    values = rows[rows["metric"] == metric]["value"].dropna()
    if values.empty:
        return None
    return Measured(float(values.mean()), float(values.std()) if len(values) > 1 else math.nan, len(values))


@dataclass(frozen=True)
class AtLeast:
    experiment: str
    metric: str
    bar: float

    def judge(self, table: pd.DataFrame) -> tuple[str, str]:
        ours = measured(table, self.experiment, self.metric)
        if ours is None:
            return "–", NOT_RUN
        return ours.text(), verdict(ours.mean - self.bar, [ours])


@dataclass(frozen=True)
class Beats:
    """`better` (experiment, metric) beats `worse` (experiment, metric); lower is better for losses and errors."""

    better: tuple[str, str]
    worse: tuple[str, str]
    lower_is_better: bool = False

    def judge(self, table: pd.DataFrame) -> tuple[str, str]:
        a, b = measured(table, *self.better), measured(table, *self.worse)
        if a is None or b is None:
            return "–", NOT_RUN
        gap = (b.mean - a.mean) if self.lower_is_better else (a.mean - b.mean)
        return f"{a.text()} against {b.text()}", verdict(gap, [a, b])


DECIDING = 2.0  # a gap decides a verdict when it is more than this many standard errors from 0


def verdict(gap: float, sides: list[Measured]) -> str:
    """Whether `gap` (positive: the claim's direction) is decided by the seeds behind it: beyond DECIDING
    standard errors of the means (√Σ s²/n over the sides), it holds or does not; within them it is undecided,
    and the verdict says how many seeds per side would decide it if the spread stayed as measured. A verdict
    that the seeds cannot decide would flip with another seed or another machine's rounding."""
    if any(side.seeds < 2 for side in sides):
        return f"{HOLDS if gap > 0 else NOT_YET} on {ONE_SEED}"
    variances = [side.std ** 2 for side in sides]
    error = math.sqrt(sum(v / side.seeds for v, side in zip(variances, sides, strict=True)))
    if gap > DECIDING * error:
        return HOLDS
    if gap < -DECIDING * error:
        return NOT_YET
    if gap == 0:
        return f"{UNDECIDED}: no gap between the means"
    needed = math.ceil(DECIDING ** 2 * sum(variances) / gap ** 2 - 1e-9)  # the 1e-9: stds rounded up
    return (f"{UNDECIDED}: the gap ({gap:+.3g}) is within {DECIDING:g} standard errors ({DECIDING * error:.3g}); "
            f"about {needed} seeds{' per side' if len(sides) > 1 else ''} would decide it")


HOLDS = "holds"
NOT_YET = "does not hold at this scale"
UNDECIDED = "undecided at this scale"
ONE_SEED = "one seed (no spread to decide with; 3 seeds or more would)"
NOT_RUN = "not run at this scale"


@dataclass(frozen=True)
class Claim:
    text: str
    source: str  # whose claim: the paper, its official code, a reproduction, our notes
    theirs: str  # their number, as they state it ("–" for a qualitative claim)
    check: AtLeast | Beats
    figure: str  # results/figures/{paper}/{figure}, shown beside the claim


def _cae() -> list[Claim]:
    grayscale = [("2Shapes", "cae_two_shapes", 0.95, "0.999"), ("3Shapes", "cae_three_shapes", 0.8, "0.988"),
                 ("MNIST&Shape", "cae_mnist_shape", 0.8, "0.950")]
    claims = [Claim(f"Phases separate the objects of {name}: ARI-FG ≥ {bar}", "official code, third-party run",
                    theirs, AtLeast(experiment, "ari_fg", bar), f"phase_{experiment}.png")
              for name, experiment, bar, theirs in grayscale]
    claims += [Claim(f"On coloured 3Shapes, {pooling} channel pooling separates objects by phase: ARI-FG ≥ 0.5",
                     "our notes (the RGB extension)", "–", AtLeast(f"cae_rgb_{pooling}", "ari_fg", 0.5),
                     f"phase_cae_rgb_{pooling}.png")
               for pooling in ("max", "weighted", "softmax", "hardmax")]
    return claims


def _iodine() -> list[Claim]:
    main = "iodine_multi_dsprites"
    claims = [
        Claim("IODINE segments Multi-dSprites: ARI-FG at least the paper's", "paper (64×64, up to 5 sprites)",
              "0.767", AtLeast(main, "ari_fg", 0.767), f"slots_{main}.png"),
        Claim("Iterative refinement improves the segmentation: ARI-FG after the last refinement above after the first",
              "paper", "–", Beats((main, f"ari_fg{LAST}"), (main, "ari_fg_t1")), "iterations.png"),
    ]
    ablations = [("layer norm on the refinement inputs", "no_layer_norm"), ("ELU over ReLU", "relu"),
                 ("the additive update over the gated one", "gated"), ("the image-sized inputs", "no_input_encoding")]
    claims += [Claim(f"Ablation, {what}: lower MSE after the last pass than {main}_{name}",
                     "a published reproduction", "–",
                     Beats((main, f"mse{LAST}"), (f"{main}_{name}", f"mse{LAST}"), lower_is_better=True),
                     "iterations.png")
               for what, name in ablations]
    return claims


def _maganet() -> list[Claim]:
    return [
        Claim("MAGANet reconstructs held-out combinations better than the VAE (to-Range BCE)", "paper", "–",
              Beats(("maganet_to_range", "bce"), ("vae_to_range", "bce"), lower_is_better=True), "recombination.png"),
        Claim("MAGANet's to-Range reconstructions stay closer to its to-Element ones (to-Diff)", "paper", "–",
              Beats(("maganet_to_range", "bce_to_diff"), ("vae_to_range", "bce_to_diff"), lower_is_better=True),
              "recombination.png"),
        Claim("The VAE reconstructs the to-Element test set better", "a published reproduction", "–",
              Beats(("vae_to_element", "bce"), ("maganet_to_element", "bce"), lower_is_better=True),
              "recombination.png"),
    ]


def _swwae() -> list[Claim]:
    return [Claim(f"Semi-supervised SWWAE ({pooling} pooling) beats supervised-only with {labels} labels", "paper",
                  "–", Beats((f"swwae_semi_{pooling}_n{labels}", "error"),
                             (f"swwae_supervised_{pooling}_n{labels}", "error"), lower_is_better=True),
                  "error_vs_labels.png")
            for labels in (100, 1000) for pooling in ("hard", "soft")]


CLAIMS = {"cae": _cae(), "iodine": _iodine(), "maganet": _maganet(), "swwae": _swwae()}


def figures_of(paper: str) -> list[str]:
    """File names of the figures the paper's claims show."""
    return list(dict.fromkeys(claim.figure for claim in CLAIMS.get(paper, [])))


def _image(path: Path | None) -> str:
    if path is None:
        return "<td>–</td>"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<td><img src="data:image/png;base64,{data}" alt="{escape(path.name)}" style="max-width:420px"></td>'


def brief(verdict: str) -> str:
    """A verdict in a few words, for the README's table: holds, not at this scale, undecided (with the seeds
    that would decide it), not measured; "one seed" where there was no spread to decide with."""
    if verdict == NOT_RUN:
        return "not measured"
    if verdict.endswith(ONE_SEED):
        return f"{'holds' if verdict.startswith(HOLDS) else 'not at this scale'}, one seed"
    if verdict.startswith(UNDECIDED):
        needed = re.search(r"about (\d+) seeds", verdict)
        return f"undecided (about {needed[1]} seeds would decide)" if needed else "undecided"
    return {HOLDS: "holds", NOT_YET: "not at this scale"}[verdict]


COLUMNS = ("paper", "claim", "theirs", "ours (mean ± std, seeds)", "at this scale")


def markdown(tables: dict[str, pd.DataFrame]) -> str:
    """Every paper's claims in one Markdown table, one row per claim: the README's results table. A paper
    without a table in `tables` (not run) shows its claims as not measured."""
    empty = pd.DataFrame(columns=["experiment", "metric", "seed", "value"])
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for paper, listed in CLAIMS.items():
        for claim in listed:
            ours, verdict = claim.check.judge(tables.get(paper, empty))
            cells = (paper, claim.text, claim.theirs, ours, brief(verdict))
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def page(paper: str, table: pd.DataFrame, figures: list[Path], scale: str) -> str:
    """The claims page: one row per claim — the claim, whose it is, their number, ours, the verdict, the figure."""
    by_name = {path.name: path for path in figures}
    rows = []
    for claim in CLAIMS.get(paper, []):
        ours, verdict = claim.check.judge(table)
        rows.append(f"<tr class=\"claim\"><td>{escape(claim.text)}</td><td>{escape(claim.source)}</td>"
                    f"<td>{escape(claim.theirs)}</td><td>{escape(ours)}</td>"
                    f"<td class=\"verdict\">{escape(verdict)}</td>{_image(by_name.get(claim.figure))}</tr>")
    return html_page(
        f"{paper}: the claims, checked at the {scale} scale",
        "<p>Ours: mean ± std over training seeds, on held-out test images, from models this workflow trained. "
        "A verdict is decided when the gap (to the bar, or between the two settings) is more than twice its "
        "standard error over seeds (√(s²/n) summed over the sides); otherwise it is undecided at this scale, "
        "with the seeds per side that would decide it at the measured spread. A row of one seed says so: it has "
        "no spread to decide with.</p>"
        "<table><thead><tr><th>claim</th><th>whose</th><th>their number</th><th>ours</th>"
        f"<th>at this scale</th><th>figure</th></tr></thead><tbody>{''.join(rows)}</tbody></table>",
        "th,td{padding:4px 8px;vertical-align:top}")
