"""The package's floors (docs/architecture.md): a module imports from its own floor or below.

Parsed with ast, nothing executed; imports inside functions count too (a lazy import is still
a dependency). A module no floor claims fails the test, so a new module gets a floor on purpose.
"""

from __future__ import annotations

import ast

from import_graph import PACKAGE, import_graph, imports_of

# Lowest first. A module belongs to the floor of the longest prefix that names it.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "core",
        (
            "cxraug", "cxraug.errors", "cxraug.fsutil", "cxraug.integrity", "cxraug.lock",
            "cxraug.progress", "cxraug.resources", "cxraug.rng", "cxraug.accel", "cxraug.config",
            "cxraug.metric_names", "cxraug.classes", "cxraug.grid", "cxraug.ema", "cxraug.malloc", "cxraug.page",
            "cxraug.significance", "cxraug.tables", "cxraug.runtime", "cxraug.coderev",
        ),
    ),
    ("data", ("cxraug.data",)),
    (
        "generation",
        ("cxraug.generator", "cxraug.registry", "cxraug.runs", "cxraug.checkpoint", "cxraug.train",
         "cxraug.synth", "cxraug.synthset", "cxraug.testing", "cxraug.replicates", "cxraug.runpage",
         "cxraug.trainplan", "cxraug.runspec", "cxraug.batches", "cxraug.trainclock", "cxraug.trainchecks"),
    ),
    ("classify", ("cxraug.classify",)),
    ("metrics", ("cxraug.metrics",)),
    ("analysis", ("cxraug.benchmark", "cxraug.compare", "cxraug.studypage", "cxraug.study")),
    (
        "api",
        ("cxraug.api", "cxraug.api_support", "cxraug.api_prepare", "cxraug.api_generators", "cxraug.api_score",
         "cxraug.api_compare", "cxraug.api_benchmark", "cxraug.api_study"),
    ),
    ("interface", ("cxraug.commands", "cxraug.cli")),
)  # fmt: skip
# The entry point runs the CLI: it sits on top whatever its name says.
TOP = {"cxraug.__main__": "interface"}


def floor_of(module: str, floors=FLOORS) -> int | None:
    """Index of the floor of ``module`` (the longest matching prefix), None if no floor claims it."""
    if module in TOP:
        return [n for n, _ in floors].index(TOP[module])
    best: tuple[int, int] | None = None
    for i, (_, prefixes) in enumerate(floors):
        for p in prefixes:
            # the package itself claims only itself, not every module under it
            covers = module == p or ("." in p and module.startswith(p + "."))
            if covers and (best is None or len(p) > best[0]):
                best = (len(p), i)
    return None if best is None else best[1]


def violations(graph: dict[str, set[str]], floors=FLOORS) -> list[str]:
    """Every edge that goes up a floor, and every module no floor claims."""
    names = [n for n, _ in floors]
    out = []
    for module, deps in sorted(graph.items()):
        here = floor_of(module, floors)
        if here is None:
            out.append(f"{module}: no floor claims it (add it to FLOORS and docs/architecture.md)")
            continue
        for dep in sorted(deps):
            there = floor_of(dep, floors)
            if there is None:
                # `from cxraug import __version__` and the like: a name of the package itself
                there = floor_of(dep.rpartition(".")[0], floors)
            if there is not None and there > here:
                out.append(f"{module} ({names[here]}) imports {dep} ({names[there]})")
    return out


def test_the_package_imports_only_down_the_floors() -> None:
    graph = import_graph(PACKAGE)
    assert "cxraug.train" in graph and "cxraug.classify.fit" in graph, "the checker sees the package"
    assert violations(graph) == []


def test_scoring_and_generation_do_not_depend_on_the_benchmark() -> None:
    graph = import_graph(PACKAGE)
    users = [m for m in graph if m.startswith("cxraug.metrics") or m in ("cxraug.train", "cxraug.synth")]
    assert users and not [(m, d) for m in users for d in graph[m] if d.startswith("cxraug.benchmark")]


def test_the_checker_catches_an_edge_up_a_floor() -> None:
    """Self-check on a synthetic graph: the rule is not vacuous."""
    graph = {
        "cxraug.metrics.score": {"cxraug.benchmark.runner", "cxraug.classify.fit"},  # up, down
        "cxraug.train": {"cxraug.metrics.training"},  # up
        "cxraug.classify.fit": {"cxraug.rng", "cxraug.classify.models"},  # down, same floor
        "cxraug.newthing": set(),  # unclaimed
        "cxraug.commands.x": {"cxraug.benchmark.runner"},  # down
    }
    found = violations(graph)
    assert found == [
        "cxraug.metrics.score (metrics) imports cxraug.benchmark.runner (analysis)",
        "cxraug.newthing: no floor claims it (add it to FLOORS and docs/architecture.md)",
        "cxraug.train (generation) imports cxraug.metrics.training (metrics)",
    ]
    src = "def f():\n    from cxraug.benchmark import runner\n    import cxraug.compare.core\n"
    known = {"cxraug.benchmark", "cxraug.benchmark.runner", "cxraug.compare.core", "cxraug.x"}
    assert imports_of(ast.parse(src), "cxraug.x", False, known) == {"cxraug.benchmark.runner", "cxraug.compare.core"}
