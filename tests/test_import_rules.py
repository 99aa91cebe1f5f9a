"""Imports point one way (ARCHITECTURE.md): each package may import only what is listed here, no import cycle
exists (imports inside functions and under TYPE_CHECKING counted), and every import of our modules placed inside a
function says why on its line or the line above."""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"hmm_processes", "compmech", "predictive_models", "probes", "figures"}
# package (or module) -> our packages it may import
ALLOWED = {
    "hmm_processes": set(),
    "predictive_models": set(),
    "probes": set(),
    "figures": set(),
    # compmech's theory modules (the top level of the package) use processes only; the runner and the CLI
    # (compmech/runs/) and the studies (compmech/studies/) tie everything together
    "compmech": {"hmm_processes"},
}
ARRAY_ONLY = {"probes", "figures"}  # plain NumPy: no jax or flax either
#: The theory modules at the top of compmech (everything else lives in compmech/runs/ or compmech/studies/).
THEORY = {
    "__init__",
    "entropy",
    "mixed_states",
    "msp",
    "measures",
    "fractal",
    "information",
    "streaming",
    "loss_curves",
    "markov_chains",
    "markov_order",
}
#: At most this many imports of our own modules inside functions (150 before the house was reshaped; half of it).
MAX_IMPORTS_IN_FUNCTIONS = 75


def imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_point_one_way(package):
    files = sorted((ROOT / package).glob("*.py"))
    assert files
    for path in files:
        ours = imported_packages(path) & OURS - {package}
        assert ours <= ALLOWED[package], f"{package}/{path.name} imports {sorted(ours - ALLOWED[package])}"
        if package in ARRAY_ONLY:
            assert not imported_packages(path) & {"jax", "flax", "optax"}, f"{package}/{path.name} imports jax"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_theory_never_imports_the_runner_or_a_study():
    for path in sorted((ROOT / "compmech").glob("*.py")):
        above = {
            m
            for m in imported_modules(path)
            if m.startswith(("compmech.runs", "compmech.studies")) or m in ("compmech.runs", "compmech.studies")
        }
        if path.stem == "__init__":  # the package's lazy map names compmech.runs.run_dir as a string only
            assert not above, f"compmech/__init__.py imports {sorted(above)}"
            continue
        assert not above, f"compmech/{path.name} (theory) imports the runner or a study: {sorted(above)}"


def test_the_top_of_compmech_holds_the_theory_only():
    """Orchestration lives in compmech/runs/, each study in compmech/studies/<name>/."""
    top = {p.stem for p in (ROOT / "compmech").glob("*.py")}
    assert top <= THEORY, f"modules at the top of compmech that are not theory: {sorted(top - THEORY)}"


def study_folders() -> list[Path]:
    return sorted(p for p in (ROOT / "compmech" / "studies").iterdir() if (p / "__init__.py").is_file())


def test_a_studys_theory_imports_processes_and_theory_only():
    for folder in study_folders():
        theory = folder / "theory.py"
        if not theory.is_file():
            continue
        for module in imported_modules(theory):
            top = module.split(".")[0]
            if top not in OURS:
                continue
            ok = top == "hmm_processes" or (module.startswith("compmech.") and module.split(".")[1] in THEORY)
            assert ok, (
                f"{theory.relative_to(ROOT)} imports {module}: a study's theory uses hmm_processes and the "
                "theory modules of compmech only"
            )


def test_studies_never_import_one_another_or_the_pipeline():
    """A study folder holds what that study alone needs, and reaches the pipeline through the Runner it is handed."""
    for folder in study_folders():
        for path in folder.glob("*.py"):
            for module in imported_modules(path):
                if module.startswith("compmech.studies.") and module.split(".")[2] not in (folder.name, "base"):
                    pytest.fail(f"{path.relative_to(ROOT)} imports another study's module {module}")
                assert module not in (
                    "compmech.runs.experiment",
                    "compmech.runs.config",
                    "compmech.runs.sweep",
                    "compmech.runs.reproduce",
                    "compmech.runs.run_dir",
                ), f"{path.relative_to(ROOT)} imports {module}: a study reaches runs through compmech.studies.Runner"


# ---------------------------------------------------------------------------------------------- the import graph


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def our_files() -> list[Path]:
    return sorted(p for package in OURS for p in (ROOT / package).rglob("*.py"))


def import_edges(path: Path, modules: set[str]) -> Iterator[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of our modules in ``path``: module level,
    inside functions and under TYPE_CHECKING alike. ``from a import b`` counts as importing ``a.b`` when that is a
    module, else ``a``."""
    tree = ast.parse(path.read_text())
    inside: set[int] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside |= {id(node) for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in OURS:
                    yield alias.name, node.lineno, id(node) in inside
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module.split(".")[0] in OURS:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
            for target in subs or [node.module]:
                yield target, node.lineno, id(node) in inside


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (ours only). The study registry (compmech.studies) finds the study folders
    by discovery, so it counts as importing each of them."""
    files = our_files()
    modules = {module_name(p) for p in files}
    graph = {module_name(p): {t for t, _, _ in import_edges(p, modules) if t in modules} for p in files}
    graph["compmech.studies"] |= {module_name(f / "__init__.py") for f in study_folders()}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first repeated last), or None."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_the_project_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def imports_in_functions() -> list[tuple[Path, int, str]]:
    files = our_files()
    modules = {module_name(p) for p in files}
    return [(p, line, target) for p in files for target, line, inside in import_edges(p, modules) if inside]


def test_imports_inside_functions_are_few_and_each_says_why():
    found = imports_in_functions()
    assert len(found) <= MAX_IMPORTS_IN_FUNCTIONS, f"{len(found)} imports of our modules inside functions"
    for path, line, target in found:
        lines = path.read_text().splitlines()
        here, above = lines[line - 1], lines[line - 2].strip() if line >= 2 else ""
        assert "#" in here or above.startswith("#"), (
            f"{path.relative_to(ROOT)}:{line} imports {target} inside a function without a one-line reason"
        )


def test_pytorch_is_a_benchmark_only_dependency():
    """PyTorch (the `[bench]` extra) is imported by benchmarks/bench_torch.py only, never by the project; the
    bridges to PyTorch models (compmech/interop/, the `[interop]` extra) import it inside the functions that take
    such a model, never at the top of a module."""
    folders = [
        d for d in ROOT.iterdir() if d.is_dir() and not d.name.startswith(".") and d.name not in ("benchmarks", "runs")
    ]  # not virtual environments, not run outputs
    files = [p for d in folders for p in d.rglob("*.py")] + list(ROOT.glob("*.py"))
    assert any(p.parent.name == "predictive_models" for p in files)
    for path in files:
        if path.is_relative_to(ROOT / "compmech" / "interop"):
            top = ast.parse(path.read_text()).body
            names = {a.name.split(".")[0] for n in top if isinstance(n, ast.Import) for a in n.names} | {
                n.module.split(".")[0] for n in top if isinstance(n, ast.ImportFrom) and n.module
            }
            assert "torch" not in names, f"{path.relative_to(ROOT)} imports torch at its top"
            continue
        assert "torch" not in imported_packages(path), f"{path.relative_to(ROOT)} imports torch"
