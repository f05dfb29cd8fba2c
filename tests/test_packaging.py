"""What `pip install .` ships: every package of the project with its subpackages, and the C files
the compiled passes build from (a wheel lacking them fails on import, or falls back silently)."""

import pathlib
import tomllib

from setuptools import find_packages

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_wheel_holds_every_package_and_subpackage():
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    shipped = set(find_packages(str(ROOT), include=find["include"]))
    roots = ("mlm_ref", "mlm_torch", "mlm_jax", "verify", "mlm_bert")
    present = {".".join(p.parent.relative_to(ROOT).parts)
               for root in roots for p in (ROOT / root).rglob("__init__.py")}
    assert present <= shipped, sorted(present - shipped)
    assert {"verify.engine", "verify.token", "verify.token.tally"} <= shipped


def test_the_c_sources_of_the_compiled_passes_are_package_data():
    data = PYPROJECT["tool"]["setuptools"]["package-data"]
    for package, patterns in data.items():
        folder = ROOT.joinpath(*package.split("."))
        matched = {p for pattern in patterns for p in folder.glob(pattern)}
        assert matched, (package, patterns)
    sources = {p for root in ("mlm_torch", "verify") for p in (ROOT / root).rglob("*.[ch]")}
    covered = {p for package, patterns in data.items() for pattern in patterns
               for p in ROOT.joinpath(*package.split(".")).glob(pattern)}
    assert sources <= covered, sorted(map(str, sources - covered))
