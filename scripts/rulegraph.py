"""Write the workflow's own rule graph (snakemake --rulegraph mermaid-js) into docs/workflow.md between markers.

Run by `make rulegraph`; tests/test_readme.py checks that the page's graph is current.
"""

import re
import subprocess
import sys
from pathlib import Path

BEGIN, END = "<!-- rulegraph:begin -->", "<!-- rulegraph:end -->"
PAGE = "docs/workflow.md"


def rulegraph(cwd: Path) -> str:
    """The rule graph as mermaid, made canonical: Snakemake numbers nodes and orders edges arbitrarily."""
    out = subprocess.run([sys.executable, "-m", "snakemake", "--rulegraph", "mermaid-js", "all"], cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    names = dict(re.findall(r"^\s*(id\d+)\[(\w+)\]", out, flags=re.M))
    edges = re.findall(r"^\s*(id\d+) --> (id\d+)", out, flags=re.M)
    ids = {name: f"id{i}" for i, name in enumerate(sorted(names.values()))}
    lines = ["flowchart TB"] + [f"\t{ids[name]}[{name}]" for name in sorted(ids)]
    lines += sorted(f"\t{ids[names[a]]} --> {ids[names[b]]}" for a, b in edges)
    return "\n".join(lines)


def block(graph: str) -> str:
    return f"{BEGIN}\n```mermaid\n{graph}\n```\n{END}"


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    page = root / PAGE
    text = page.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block(rulegraph(root)), text, flags=re.S)
    page.write_text(new)


if __name__ == "__main__":
    main()
