"""The layering the style guide asks for, checked on the source: handlers are thin, the domain is pure."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from shepherd.inbound.eventbridge import AwsShape
from shepherd.kernel.frozen import Frozen
from shepherd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "shepherd" / "shepherd"
HANDLERS = sorted((ROOT / "functions").glob("*/app.py"))
DOMAIN = sorted(
    [
        *(PACKAGE / "registry").glob("*.py"),
        *(PACKAGE / "rollouts").glob("*.py"),
        *(PACKAGE / "analysis").glob("*.py"),
        *(PACKAGE / "contracts").glob("*.py"),
        *(PACKAGE / "capacity").glob("*.py"),
        *(PACKAGE / "kernel").glob("*.py"),
    ]
)
MODULES = sorted(
    ".".join(("shepherd", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
    for path in PACKAGE.rglob("*.py")
)
AWS_MODULES = {"boto3", "botocore", "aws_lambda_powertools"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", DOMAIN, ids=lambda p: p.name)
def test_the_domain_imports_no_aws_sdk_and_reads_no_environment(path):
    assert not imported_modules(path) & AWS_MODULES
    assert "os.environ" not in path.read_text()


@pytest.mark.parametrize("path", sorted((PACKAGE / "analysis").glob("*.py")), ids=lambda p: p.name)
def test_the_canary_judge_needs_no_numeric_library(path):
    # The judge runs in every controller tick: stdlib math keeps the layer small and the cold start short.
    assert not imported_modules(path) & {"numpy", "scipy", "pandas", "statsmodels"}


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.parent.name)
def test_handlers_make_no_aws_calls_and_stay_thin(path):
    imports = imported_modules(path)
    assert "boto3" not in imports and "botocore" not in imports
    handler = next(node for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.FunctionDef))
    assert handler.name == "lambda_handler"
    assert handler.end_lineno - handler.lineno < 20  # parse, one service call, return


def test_every_function_in_the_template_has_a_handler_and_every_handler_a_function():
    template = (ROOT / "template.yaml").read_text()
    for path in HANDLERS:
        assert f"CodeUri: functions/{path.parent.name}/" in template
    assert template.count("CodeUri: functions/") == len(HANDLERS)


CLI_PACKAGE = ROOT / "cli" / "shepherd_cli"
# Modules that run what they read: local state is data (JSON validated into models), never code.
CODE_LOADING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "shelve", "marshal", "jsonpickle", "cloudpickle"}


@pytest.mark.parametrize("path", sorted(CLI_PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(CLI_PACKAGE)))
def test_the_cli_loads_no_pickle(path):
    assert not imported_modules(path) & CODE_LOADING_MODULES
    assert "pickle.load" not in path.read_text()


def test_the_kernel_depends_on_no_other_part_of_shepherd():
    for path in (PACKAGE / "kernel").glob("*.py"):
        tree = ast.parse(path.read_text())
        run_time = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module]
        assert not [node.module for node in run_time if node.module.startswith("shepherd.")], path.name


@pytest.mark.parametrize("module", MODULES)
def test_every_validated_record_and_contract_has_the_one_frozen_base(module):
    # Unknown fields refused, immutable, built on first use: said once, in shepherd.kernel.frozen. Only
    # the settings (the environment has other variables) and AWS's own shapes (which AWS may extend)
    # are read otherwise.
    exempt = (Settings, AwsShape)
    loaded = importlib.import_module(module)
    for name, value in vars(loaded).items():
        defined_here = inspect.isclass(value) and value.__module__ == module
        if defined_here and issubclass(value, BaseModel) and not issubclass(value, exempt):
            assert issubclass(value, Frozen), f"{module}.{name}"


# --- the import rules: the map of docs/design.md, checked on the source ----------------------------------

# What each part of the `shepherd` package may import of the others (besides itself), the same table as
# docs/design.md's map. The domain is kernel, contracts, registry, rollouts, analysis and capacity: it
# imports no adapter, no wiring (bootstrap) and no settings (which read the environment: the wiring
# hands the domain what it needs). A new package gets its row here and in the map, or this test fails.
MAY_IMPORT: dict[str, frozenset[str]] = {
    "kernel": frozenset(),
    "contracts": frozenset({"kernel", "registry", "analysis"}),
    "registry": frozenset({"kernel", "contracts"}),
    "analysis": frozenset({"kernel"}),
    "capacity": frozenset({"kernel"}),
    "rollouts": frozenset({"kernel", "contracts", "registry", "analysis", "capacity"}),
    "settings": frozenset({"kernel", "registry"}),
    "adapters": frozenset({"kernel", "contracts", "registry", "rollouts", "analysis", "capacity", "settings"}),
    # bootstrap: only `inbound/refusal.py`, which publishes `Command Refused` with the function's publisher.
    "inbound": frozenset({"kernel", "contracts", "registry", "rollouts", "analysis", "bootstrap"}),
    "bootstrap": frozenset(
        {"kernel", "contracts", "registry", "rollouts", "analysis", "capacity", "settings", "adapters", "cold_start"}
    ),
    "cold_start": frozenset(),
    "shepherd": frozenset(),  # the package's own __init__
}
# The parts that may import the AWS SDK: everything else gets AWS through an adapter's port.
AWS_SDK_PARTS = frozenset({"adapters", "bootstrap"})
# The handlers (functions/*/app.py) import the wiring, their parser and the cold-start helper only.
HANDLERS_MAY_IMPORT = frozenset({"bootstrap", "inbound", "cold_start"})
MODULE_PATHS = {
    ".".join(("shepherd", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__"): path
    for path in PACKAGE.rglob("*.py")
}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def run_time_imports(path: Path, module: str) -> set[str]:
    """Every module name `path` imports when it runs, at module level or inside a function, and each
    `from X import name` as X.name too (it may be a submodule); imports under `if TYPE_CHECKING:` are
    types only and left out."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for other in child.orelse:
                    visit_node(other)
                continue
            visit_node(child)

    def visit_node(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = (
                importlib.util.resolve_name("." * node.level + (node.module or ""), package)
                if node.level
                else node.module
            )
            assert base is not None
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
        visit(node)

    visit(ast.parse(path.read_text()))
    return names


def part_of(module: str) -> str:
    """`shepherd.rollouts.canary` -> `rollouts`, `shepherd.bootstrap` -> `bootstrap`, `shepherd` -> `shepherd`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of the package it imports (run time)."""
    return {
        module: {name for name in run_time_imports(path, module) if name in MODULE_PATHS and name != module}
        for module, path in MODULE_PATHS.items()
    }


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each set of modules that import one another back, directly or through others (a module on a
    cycle reaches itself; the modules it reaches and that reach it are that cycle's)."""
    reach = {node: reachable(graph, node) for node in graph}
    found = {frozenset(n for n in reach[node] if node in reach[n]) for node in graph if node in reach[node]}
    return sorted(sorted(component) for component in found)


def test_the_cycle_finder_finds_a_cycle():
    # The check below must be able to fail: a three-module loop and a self-standing module.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_module_of_shepherd_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("module", sorted(MODULE_PATHS))
def test_each_part_imports_only_what_the_map_allows(module):
    part = part_of(module)
    assert part in MAY_IMPORT, f"{part} has no row in the map (MAY_IMPORT here, the map in docs/design.md)"
    imported = run_time_imports(MODULE_PATHS[module], module)
    parts = {part_of(name) for name in imported if name.split(".")[0] == "shepherd" and name != "shepherd"}
    assert parts - {part} <= MAY_IMPORT[part], f"{module} imports {sorted(parts - {part} - MAY_IMPORT[part])}"
    assert not {name.split(".")[0] for name in imported} & {"shepherd_cli"}, f"{module} imports the CLI"
    if part not in AWS_SDK_PARTS:
        assert not {name.split(".")[0] for name in imported} & {"boto3", "botocore"}, f"{module} imports the AWS SDK"


@pytest.mark.parametrize("path", HANDLERS, ids=lambda p: p.parent.name)
def test_handlers_import_only_the_wiring_their_parser_and_the_cold_start_helper(path):
    imported = run_time_imports(path, "app")
    parts = {part_of(name) for name in imported if name.split(".")[0] == "shepherd" and name != "shepherd"}
    assert parts <= HANDLERS_MAY_IMPORT
    assert "shepherd_cli" not in {name.split(".")[0] for name in imported}


def test_the_map_in_the_design_document_is_the_table_here():
    design = (ROOT / "docs" / "design.md").read_text()
    rows = re.findall(r"^\| `([a-z_]+)`[^|]*\|[^|]*\| may import: ([^|]*)\|", design, flags=re.MULTILINE)
    documented = {part: frozenset(re.findall(r"`([a-z_]+)`", allowed)) for part, allowed in rows if part in MAY_IMPORT}
    assert documented == {part: allowed for part, allowed in MAY_IMPORT.items() if part != "shepherd"}
    [functions] = [allowed for part, allowed in rows if part == "functions"]
    assert frozenset(re.findall(r"`([a-z_]+)`", functions)) == HANDLERS_MAY_IMPORT


# One idea per file: a module past 500 lines holds several, and a newcomer reads all of them.
MAX_MODULE_LINES = 500
SOURCES = sorted([*(ROOT / "layers").rglob("*.py"), *(ROOT / "functions").rglob("*.py"), *CLI_PACKAGE.rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_over_500_lines(path):
    assert len(path.read_text().splitlines()) <= MAX_MODULE_LINES
