"""The claims checks: a bar, one setting against another beyond the seed spread, the last refinement pass,
and the page that shows them with their figures."""

import math

import pandas as pd
import pytest

from structae import claims


def table(values: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    rows = [{"experiment": e, "metric": m, "seed": s, "value": v}
            for (e, m), seeds in values.items() for s, v in enumerate(seeds)]
    return pd.DataFrame(rows)


def test_a_bar_holds_fails_is_undecided_or_was_not_run():
    frame = table({("a", "ari_fg"): [0.8, 0.9]})  # 0.85 ± 0.071: standard error 0.05
    assert claims.AtLeast("a", "ari_fg", 0.99).judge(frame) == ("0.850 ± 0.071 (2 seeds)", claims.NOT_YET)
    assert claims.AtLeast("a", "ari_fg", 0.7).judge(frame)[1] == claims.HOLDS
    assert claims.AtLeast("a", "ari_fg", 0.8).judge(frame)[1] == (
        f"{claims.UNDECIDED}: the gap (+0.05) is within 2 standard errors (0.1); about 8 seeds would decide it")
    assert claims.AtLeast("b", "ari_fg", 0.8).judge(frame) == ("–", claims.NOT_RUN)


@pytest.mark.parametrize("better, worse, verdict", [
    ([1.0, 1.2], [5.0, 5.2], claims.HOLDS),  # gap 4, twice the standard error 0.4
    ([1.0, 3.0], [2.5, 3.5], f"{claims.UNDECIDED}: the gap (+1) is within 2 standard errors (2.24); about 10 "
                             "seeds per side would decide it"),
    ([3.0, 3.0], [2.0, 2.0], claims.NOT_YET),  # the wrong way round for a loss, beyond any doubt
    # the wrong way round within the spread: another seed could turn it, so no verdict either way
    ([2.0, 3.0], [1.5, 2.5], f"{claims.UNDECIDED}: the gap (-0.5) is within 2 standard errors (1.41); about 16 "
                             "seeds per side would decide it"),
    ([1.0], [2.0], f"{claims.HOLDS} on {claims.ONE_SEED}"),
    ([2.0], [1.0, 1.1], f"{claims.NOT_YET} on {claims.ONE_SEED}"),
])
def test_one_setting_against_another_beyond_the_standard_error(better, worse, verdict):
    frame = table({("a", "mse"): better, ("b", "mse"): worse})
    assert claims.Beats(("a", "mse"), ("b", "mse"), lower_is_better=True).judge(frame)[1] == verdict


def test_the_last_refinement_pass_is_the_highest_t():
    frame = table({("a", "ari_fg_t1"): [0.2], ("a", "ari_fg_t2"): [0.5], ("a", "ari_fg_t10"): [0.9]})
    ours = claims.measured(frame, "a", f"ari_fg{claims.LAST}")
    assert ours.mean == 0.9 and math.isnan(ours.std) and ours.seeds == 1


def test_every_paper_has_claims_with_figures_the_papers_make():
    from structae import figures

    names = set(figures.registry())
    for paper, listed in claims.CLAIMS.items():
        assert listed, paper
        for claim in listed:
            stem = claim.figure.removesuffix(".png")  # a paper figure, or a model figure of one experiment
            assert any(stem == name or stem.startswith(f"{name}_") for name in names), claim.figure


def test_the_page_shows_each_claim_with_its_verdict_and_figure(tmp_path):
    figure = tmp_path / "iterations.png"
    figure.write_bytes(b"\x89PNG fake")
    frame = table({("iodine_multi_dsprites", "ari_fg"): [0.9, 0.8], ("iodine_multi_dsprites", "ari_fg_t1"): [0.1, 0.2],
                   ("iodine_multi_dsprites", "ari_fg_t3"): [0.9, 0.8]})
    page = claims.page("iodine", frame, [figure], "tiny")
    assert page.count('<tr class="claim">') == len(claims.CLAIMS["iodine"])
    assert "checked at the tiny scale" in page and "data:image/png;base64," in page
    assert page.count(claims.NOT_RUN) == 4  # the four ablations were not trained here


@pytest.mark.parametrize("verdict, short", [
    (claims.HOLDS, "holds"),
    (claims.NOT_YET, "not at this scale"),
    (f"{claims.UNDECIDED}: the gap (+1) is within 2 standard errors (2.24); about 10 seeds per side would decide it",
     "undecided (about 10 seeds would decide)"),
    (f"{claims.HOLDS} on {claims.ONE_SEED}", "holds, one seed"),
    (f"{claims.NOT_YET} on {claims.ONE_SEED}", "not at this scale, one seed"),
    (claims.NOT_RUN, "not measured"),
])
def test_a_verdict_in_a_few_words(verdict, short):
    assert claims.brief(verdict) == short


def test_the_readme_table_has_a_row_per_claim_of_every_paper():
    frame = table({("cae_two_shapes", "ari_fg"): [0.99, 0.98]})
    lines = claims.markdown({"cae": frame}).splitlines()
    assert lines[0] == "| " + " | ".join(claims.COLUMNS) + " |"
    rows = [line.split(" | ") for line in lines[2:]]
    assert len(rows) == sum(map(len, claims.CLAIMS.values()))
    two_shapes = next(row for row in rows if "2Shapes" in row[1])
    assert two_shapes[3:] == ["0.9850 ± 0.0071 (2 seeds)", "holds |"]
    assert all(row[-1] == "not measured |" for row in rows if row[0] == "| iodine")  # no iodine table given
    assert all(len(cell.split()) <= 25 for row in rows for cell in row)  # cells a reader takes in at a glance


def test_the_readme_takes_the_table_between_its_markers():
    import sys

    from conftest import REPO

    sys.path.insert(0, str(REPO / "scripts"))
    import readme_claims

    readme = f"# x\n{readme_claims.START}\nold\n{readme_claims.END}\nrest\n"
    spliced = readme_claims.splice(readme, "| a |\n", "a test run")
    assert spliced == f"# x\n{readme_claims.START}\nNumbers from a test run.\n\n| a |\n{readme_claims.END}\nrest\n"
    with pytest.raises(SystemExit, match="no claims markers"):
        readme_claims.splice("# x\n", "| a |\n", "a test run")
