"""The shape of the source tree: module sizes and the longest functions (a redesign's before/after).

    python3 benchmarks/code_shape.py [--root src/fnet] [--top 5]

Lines are physical lines of each file; a function's length runs from its ``def`` to its last line
(methods are named ``Class.method``, nested functions ``outer.<locals>.inner``).
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def functions(tree: ast.AST, prefix: str = ""):
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            name = prefix + node.name
            yield name, node.end_lineno - node.lineno + 1
            yield from functions(node, name + ".<locals>.")
        elif isinstance(node, ast.ClassDef):
            yield from functions(node, prefix + node.name + ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default="src/fnet")
    parser.add_argument("--top", type=int, default=5)
    args = parser.parse_args()
    root = Path(args.root)
    sizes, funcs = [], []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root.parent)
        sizes.append((len(text.splitlines()), str(rel)))
        funcs += [(n, f"{rel}:{name}") for name, n in functions(ast.parse(text))]
    print(f"{len(sizes)} modules, {sum(n for n, _ in sizes)} lines")
    print("\nmodules, largest first:")
    for n, name in sorted(sizes, reverse=True):
        print(f"{n:6d}  {name}")
    print(f"\nthe {args.top} longest functions:")
    for n, name in sorted(funcs, reverse=True)[: args.top]:
        print(f"{n:6d}  {name}")


if __name__ == "__main__":
    main()
