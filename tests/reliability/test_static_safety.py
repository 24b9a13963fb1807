"""S4 (static half) and S7: no code deserializer in engine/, service/, migrations/; patched parsers.

The checker walks the syntax tree of every module, so comments and strings never trip it and
aliases (`import pickle as p`, `from numpy import load`) do not hide a use. Each rule is shown to
fire on a planted snippet, so a checker that silently stopped working would fail here too.
"""

from __future__ import annotations

import ast
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("engine", "service", "migrations")  # migrations run at every start-up
FORBIDDEN_MODULES = frozenset({"pickle", "_pickle", "cPickle", "cloudpickle", "dill", "marshal",
                               "shelve", "joblib", "torch"})  # fmt: skip
FORBIDDEN_CALLS = frozenset({"eval", "exec", "compile", "__import__"})
NUMPY_NAMES = frozenset({"np", "numpy"})


def findings(source: str, filename: str = "<snippet>") -> list[str]:
    """Every forbidden construct in `source`, as "file:line: what"."""
    tree = ast.parse(source, filename)
    modules = _module_aliases(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        problem = _import_problem(node) or _call_problem(node, modules)
        if problem:
            found.append(f"{filename}:{node.lineno}: {problem}")
    return found


def _module_aliases(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    return names


def _import_problem(node: ast.AST) -> str | None:
    if isinstance(node, ast.Import):
        for alias in node.names:
            if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                return f"imports {alias.name}"
    if isinstance(node, ast.ImportFrom) and node.module:
        root = node.module.split(".")[0]
        imported = {alias.name for alias in node.names}
        if root in FORBIDDEN_MODULES:
            return f"imports from {node.module}"
        if root == "importlib" and "import_module" in imported:
            return "imports importlib.import_module"
        if root == "numpy" and "load" in imported:
            return "imports numpy.load by name (its allow_pickle cannot be checked)"
    return None


def _call_problem(node: ast.AST, modules: set[str]) -> str | None:
    if not isinstance(node, ast.Call):
        return None
    func = node.func
    keywords = {kw.arg: kw.value for kw in node.keywords}
    pickle_flag = keywords.get("allow_pickle")
    if pickle_flag is not None and not _is_false(pickle_flag):
        return "allow_pickle is not the literal False"
    if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
        return f"calls {func.id}"
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else None
        if func.attr == "import_module":
            return "calls import_module"
        if func.attr == "load" and owner in NUMPY_NAMES and not _is_false(pickle_flag):
            return "np.load without allow_pickle=False"
    if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
        target, name = node.args[0], node.args[1]
        if isinstance(target, ast.Name) and target.id in modules and not _is_literal(name):
            return f"getattr on module {target.id} with a computed name"
    return None


def _is_false(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _is_literal(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def source_files(root: Path = ROOT) -> list[Path]:
    return [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]


def scan(root: Path = ROOT) -> list[str]:
    """Every forbidden construct in the scanned packages under `root`."""
    return [
        problem
        for path in source_files(root)
        for problem in findings(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    ]


def test_engine_service_and_migrations_hold_no_code_deserializer():
    files = source_files()
    assert len(files) > 20, "the walk found too few modules; is ROOT right?"
    for package in PACKAGES:  # each package is walked, migrations/versions included
        assert any(path.relative_to(ROOT).parts[0] == package for path in files), package
    assert ROOT / "migrations" / "env.py" in files
    assert any(path.parent == ROOT / "migrations" / "versions" for path in files)
    assert scan() == []


@pytest.mark.parametrize("where", ["migrations/env.py", "migrations/versions/0002_planted.py"])
def test_the_scan_fires_on_a_forbidden_call_planted_under_migrations(tmp_path, where):
    # A copy of the scanned tree with bad lines added to a migration (never to the real tree).
    for path in source_files():
        copy = tmp_path / path.relative_to(ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_bytes(path.read_bytes())
    assert scan(tmp_path) == []
    planted = tmp_path / where
    before = planted.read_text(encoding="utf-8") if planted.exists() else ""
    planted.write_text(before + "\nimport pickle\nvalue = eval('1')\n", encoding="utf-8")
    found = scan(tmp_path)
    assert len(found) == 2 and all(problem.startswith(f"{where}:") for problem in found), found
    assert "imports pickle" in found[0] and "calls eval" in found[1]


PLANTED = {
    "import pickle": "imports pickle",
    "import cloudpickle as cp": "imports cloudpickle",
    "from dill import loads": "imports from dill",
    "import marshal": "imports marshal",
    "import shelve": "imports shelve",
    "from joblib import load": "imports from joblib",
    "import torch.serialization": "imports torch.serialization",
    "eval('1')": "calls eval",
    "exec('x = 1')": "calls exec",
    "compile('1', 'f', 'eval')": "calls compile",
    "__import__('os')": "calls __import__",
    "import importlib\nimportlib.import_module('os')": "calls import_module",
    "from importlib import import_module": "imports importlib.import_module",
    "import numpy as np\nnp.load('f')": "np.load without allow_pickle=False",
    "import numpy\nnumpy.load('f', allow_pickle=flag)": "allow_pickle is not the literal False",
    "import numpy as np\nnp.load('f', allow_pickle=True)": "allow_pickle is not the literal False",
    "from numpy import load": "imports numpy.load by name",
    "x.read_array(f, allow_pickle=True)": "allow_pickle is not the literal False",
    "import os\ngetattr(os, name)": "getattr on module os with a computed name",
}


@pytest.mark.parametrize("snippet", sorted(PLANTED))
def test_the_checker_fires_on_each_planted_construct(snippet):
    found = findings(snippet)
    assert len(found) == 1 and PLANTED[snippet] in found[0]


@pytest.mark.parametrize(
    "snippet",
    [
        "import numpy as np\nnp.load(f, allow_pickle=False)",
        "import re\nre.compile('x')",
        "getattr(obj, name)",  # attribute access on an object is not a dynamic import
        "import os\ngetattr(os, 'sep')",
        "# import pickle\ntext = 'eval(x)'",
        "from importlib.metadata import version",
    ],
)
def test_the_checker_leaves_harmless_code_alone(snippet):
    assert findings(snippet) == []


@pytest.mark.parametrize(
    ("package", "floor"),
    [("starlette", "0.40.0"), ("python-multipart", "0.0.27"), ("fastapi", "0.115.0")],
)
def test_installed_parsers_are_at_least_the_patched_releases(package, floor):
    assert Version(version(package)) >= Version(floor)
