"""Write the workflow's own rule graph (snakemake --rulegraph mermaid-js) into README.md between markers.

Run by `make rulegraph`; tests/test_readme.py checks that the README's graph is current.
"""

import re
import subprocess
import sys
from pathlib import Path

BEGIN, END = "<!-- rulegraph:begin -->", "<!-- rulegraph:end -->"


def rulegraph(cwd: Path) -> str:
    out = subprocess.run([sys.executable, "-m", "snakemake", "--rulegraph", "mermaid-js", "all"], cwd=cwd,
                         capture_output=True, text=True, check=True).stdout
    return out[out.index("flowchart"):].rstrip() if "flowchart" in out else out.rstrip()


def block(graph: str) -> str:
    return f"{BEGIN}\n```mermaid\n{graph}\n```\n{END}"


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    readme = root / "README.md"
    text = readme.read_text()
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), lambda _: block(rulegraph(root)), text, flags=re.S)
    readme.write_text(new)


if __name__ == "__main__":
    main()
