"""The README's demo table is what the demo prints (issue 14: it had drifted).

The README repeats the summary table the run ends with (results/report/summary.md,
`secateurs.evaluate.report.summary_table`): the same header, one row per model. This test
finds the README table with exactly that header and compares it with the test suite's demo
run, cell by cell: names, layers and parameters exactly, numbers within a tolerance that
covers other CPUs (float kernels differ, and training amplifies the difference a little).
"""

from __future__ import annotations

import math
import re

import pytest

from workflow import REPO

# relative tolerance of bits per byte and of log-perplexity (both are the NLL, per byte or
# per token; a fixed tolerance on perplexity itself would be tighter: a 0.9% change in
# bits per byte moved the demo base's zh perplexity 5.4% between two CPUs), absolute one
# of a change in points
BPB_REL, LOG_PPL_REL, CHANGE_POINTS = 0.02, 0.02, 3.0


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table in `text`: header, then body rows, as lists of cell strings."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            found.append([current[0], *current[2:]])  # drop the --- row
            current = []
    return found


def run_table(demo_run) -> list[list[str]]:
    summary = (demo_run / "results" / "report" / "summary.md").read_text(encoding="utf-8")
    return tables(summary)[0]  # the models table leads the summary


def readme_table(header: list[str]) -> list[list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    for table in tables(text):
        if table[0] == header:
            return table
    pytest.fail("README.md has no table with the header the demo's summary prints: "
                f"| {' | '.join(header)} |  (paste the run's table from summary.md)")


def changes(cell: str) -> dict[str, float]:
    """'en +42.9%, zh -9.6%' -> {'en': 42.9, 'zh': -9.6}; '(base)' -> {}."""
    return {lang: float(v) for lang, v in re.findall(r"(\w+) ([+-]\d+(?:\.\d+)?)%", cell)}


@pytest.mark.slow
def test_readme_demo_table_matches_the_demo_run(demo_run):
    ours = run_table(demo_run)
    readme = readme_table(ours[0])
    header = ours[0]
    assert [row[0] for row in readme[1:]] == [row[0] for row in ours[1:]], "models differ"
    for said, got in zip(readme[1:], ours[1:]):
        for column, a, b in zip(header, said, got):
            where = f"README {said[0]} {column}: {a!r}, the demo run prints {b!r}"
            if column.startswith("ppl "):
                assert math.log(float(a.replace(",", ""))) == pytest.approx(
                    math.log(float(b.replace(",", ""))), rel=LOG_PPL_REL), where
            elif column.startswith("bits/byte "):
                assert float(a) == pytest.approx(float(b), rel=BPB_REL), where
            elif column == "change vs base":
                assert changes(a).keys() == changes(b).keys(), where
                for lang, value in changes(a).items():
                    assert value == pytest.approx(changes(b)[lang], abs=CHANGE_POINTS), where
            else:  # model, layers, parameters: exact
                assert a == b, where


def test_table_parser_reads_the_summary_format():
    """The parser itself, on the format summary_table writes (no demo run needed)."""
    text = ("intro\n\n| model | layers | change vs base |\n| --- | --- | --- |\n"
            "| base | 8 | (base) |\n| pruned | 5 | en +42.9%, zh -9.6% |\n\nafter\n")
    (table,) = tables(text)
    assert table == [["model", "layers", "change vs base"], ["base", "8", "(base)"],
                     ["pruned", "5", "en +42.9%, zh -9.6%"]]
    assert changes(table[2][2]) == {"en": 42.9, "zh": -9.6}
