"""Copy the workflow's claims table (results/report/claims.md, rule claims_table) into the README, between its
markers, with a line saying which run the numbers come from. Run after `make all`:

    python scripts/readme_claims.py --run "a fresh clone's make all, 2 CPU cores, 2026-12-08"
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- claims table: written by scripts/readme_claims.py from results/report/claims.md -->"
END = "<!-- /claims -->"


def splice(readme: str, table: str, run: str) -> str:
    """`readme` with the text between the markers replaced by the run's line and the table."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README.md has no claims markers; put {START} and {END} where the table goes")
    return pattern.sub(lambda _: f"{START}\nNumbers from {run}.\n\n{table.strip()}\n{END}", readme)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="which run made the numbers (where, when, how long)")
    parser.add_argument("--table", default=ROOT / "results/report/claims.md", type=Path)
    parser.add_argument("--readme", default=ROOT / "README.md", type=Path)
    args = parser.parse_args(argv)
    if not args.table.exists():
        sys.exit(f"{args.table} does not exist: make it with `snakemake results/report/claims.md` (part of `all`)")
    args.readme.write_text(splice(args.readme.read_text(), args.table.read_text(), args.run))
    print(f"{args.readme}: claims table from {args.table}")


if __name__ == "__main__":
    main()
