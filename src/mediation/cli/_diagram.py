"""``mediation diagram``: the workflow's state diagram (Mermaid or Graphviz dot)."""

from __future__ import annotations

import argparse

from .._report import dot, mermaid
from ._common import AddParser, Context

__all__ = ["register", "run"]


def register(add: AddParser) -> None:
    sp = add("diagram", "the workflow's state diagram")
    sp.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    sp.set_defaults(run=run)


def run(args: argparse.Namespace, ctx: Context) -> int:
    ctx.out.write(dot() if args.format == "dot" else mermaid())
    return 0
