"""The house rules on imports.

* mlm_ref needs only NumPy, mlm_torch never loads JAX, mlm_jax never loads PyTorch, and verify
  loads a framework only when it is used (checked by importing in a fresh interpreter);
* no import cycle anywhere in the project's packages, and no module imports another module's
  private (underscore) name (checked on the source: every `import` and `from ... import`
  statement, those inside functions included);
* the NSP gate and the whole-word gate (with a NumPy masker) run without loading PyTorch;
* the layout of `verify/` (docs/architecture.md): the engine never imports a gate, at most 8
  top-level modules, no folder of more than 12, no module basename twice, no module over 350
  lines and no function over 60.
"""

from __future__ import annotations

import ast
import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = [p for p in ("mlm_ref", "mlm_torch", "mlm_jax", "verify", "mlm_bert")
            if (ROOT / p).is_dir()]

RULES = [
    ("mlm_ref", ["torch", "jax", "scipy"]),
    ("mlm_torch", ["jax"]),
    ("mlm_jax", ["torch"]),
    ("verify", ["torch", "jax"]),
    ("verify.engine.frameworks", ["torch", "jax"]),
    ("verify.registry", ["torch", "jax", "scipy"]),
]


@pytest.mark.parametrize("module, forbidden", RULES, ids=[r[0] for r in RULES])
def test_importing_a_package_does_not_load_another_framework(module, forbidden):
    needs = {"mlm_torch": "torch", "mlm_jax": "jax"}.get(module)
    if needs and importlib.util.find_spec(needs) is None:
        pytest.skip(f"{needs} is not installed")
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {forbidden!r} if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "", f"importing {module} loaded {loaded}"


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the project's packages by dotted name (a package by its own name)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, modules: dict) -> list[tuple[str, str, int]]:
    """`(imported module, imported name or '', line)` for every import statement in `path`."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.append((sub, "", node.lineno) if sub in modules
                             else (source, alias.name, node.lineno))
    return [f for f in found if f[0].split(".")[0] in PACKAGES]


def _graph():
    modules = _modules()
    edges, private = {m: set() for m in modules}, []
    for name, path in modules.items():
        for target, imported, line in _imports(name, path, modules):
            # `import a.b.c` runs a.b.c; the closest project module stands for it
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in modules and target != name:
                edges[name].add(target)
            if imported.startswith("_") and not imported.startswith("__"):
                private.append(f"{path.relative_to(ROOT)}:{line} imports {imported} from "
                               f"{target}")
    return edges, private


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search, three colours)."""
    state, stack = {}, []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(edges):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def test_the_import_walk_sees_relative_and_function_level_imports():
    """The walk itself: a cycle hidden in a function-level relative import is found."""
    edges, _ = _graph()
    assert "verify.token.runner" in edges["verify"]  # imported inside check_maskers
    assert "mlm_ref.config" in edges["mlm_ref"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycle_between_the_projects_modules():
    edges, _ = _graph()
    cycle = _cycle(edges)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_module_imports_another_modules_private_names():
    _, private = _graph()
    assert private == [], "\n".join(private)


# The layout of `verify/` by role (docs/architecture.md): the engine is the skeleton every gate
# plugs into, so it must never depend on a gate; the command-line modules stay few and thin.
GATES = ("verify.token", "verify.words", "verify.stream", "verify.sentence_pairs")
EXEMPT_BASENAMES = {"__init__", "__main__", "cli"}


def _verify_files() -> list[pathlib.Path]:
    return sorted((ROOT / "verify").rglob("*.py"))


def test_the_engine_never_imports_a_gate():
    edges, _ = _graph()
    bad = [f"{m} -> {t}" for m in edges if m == "verify.engine" or m.startswith("verify.engine.")
           for t in edges[m] if t.startswith(GATES)]
    assert bad == [], "\n".join(bad)


def test_verify_top_level_has_at_most_eight_modules():
    top = sorted(p.name for p in (ROOT / "verify").glob("*.py"))
    assert len(top) <= 8, top


def test_no_folder_of_verify_holds_more_than_twelve_modules():
    folders: dict[str, int] = {}
    for path in _verify_files():
        folder = str(path.parent.relative_to(ROOT))
        folders[folder] = folders.get(folder, 0) + 1
    crowded = {k: n for k, n in folders.items() if n > 12}
    assert crowded == {}, crowded


def test_no_module_basename_is_used_twice_inside_verify():
    seen: dict[str, list[str]] = {}
    for path in _verify_files():
        if path.stem not in EXEMPT_BASENAMES:
            seen.setdefault(path.stem, []).append(str(path.relative_to(ROOT)))
    twice = {k: v for k, v in seen.items() if len(v) > 1}
    assert twice == {}, twice


def test_no_module_of_verify_is_over_350_lines_and_no_function_over_60():
    too_long = []
    for path in _verify_files():
        source = path.read_text()
        name = str(path.relative_to(ROOT))
        if source.count("\n") > 350:
            too_long.append(f"{name}: {source.count(chr(10))} lines")
        for node in ast.walk(ast.parse(source, name)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > 60:
                    too_long.append(f"{name}:{node.lineno} {node.name}: {lines} lines")
    assert too_long == [], "\n".join(too_long)


GATE_RUNS = {
    "nsp": "from verify.nsp import check_nsp\nassert check_nsp(pairs=500).verdict != 'FAIL'",
    "wwm with numpy": (
        "from mlm_ref import MaskingConfig\n"
        "from verify.words.wwm_runner import check_wwm_maskers\n"
        "cfg = MaskingConfig(padding_token=0, mask_token=1, no_mask_tokens=(2, 3), "
        "n_tokens=1000)\n"
        "assert check_wwm_maskers(['numpy'], cfg, tokens=20000).verdict != 'FAIL'"),
}


@pytest.mark.parametrize("gate", GATE_RUNS)
def test_a_gate_runs_without_pytorch_when_the_users_code_needs_none(gate):
    code = GATE_RUNS[gate] + "\nimport sys\nprint('torch' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT).stdout.strip()
    assert loaded == "False", f"the {gate} gate loaded torch"
