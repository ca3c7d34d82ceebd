"""The one rule for names that become paths: datasets, splits, experiments, papers, figures.

Names are joined into paths (results/checkpoints/{experiment}/...) and matched by the workflow's
wildcards, so they must not be able to climb out of a directory, reach a shell, or collide with
another file: lower_snake_case, ASCII, at most 64 characters.
"""

from __future__ import annotations

import re

from structae.errors import UserError

PATTERN = r"[a-z][a-z0-9_]{0,63}"  # also the workflow's wildcard constraint
_SAFE = re.compile(PATTERN)


def is_safe(name: object) -> bool:
    return isinstance(name, str) and _SAFE.fullmatch(name) is not None


def check(what: str, name: object) -> str:
    """`name` if it follows the rule; else one line naming `what` and the rule."""
    if not is_safe(name):
        raise UserError(f"{what} name {ascii(name)} is not allowed; use lower_snake_case: a letter a-z, "
                        "then letters, digits or _ (at most 64 characters)")
    return name
