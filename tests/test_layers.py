"""The layers' edges, read from the imports (docs/architecture.md): what may import what."""
from __future__ import annotations

import ast
import subprocess
import sys

from support import ROOT


def imports(package: str) -> dict[str, set[str]]:
    """Every module under `package` (a folder of the project) -> the modules it imports (absolute names)."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
        found[module] = names
    return found


def offenders(package: str, forbidden) -> list[str]:
    return [f"{module} imports {name}" for module, names in imports(package).items()
            for name in sorted(names) if forbidden(module, name)]


def under(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_the_server_never_imports_its_test_suites():
    for package in ("hearth", "handlers", "generated"):
        assert offenders(package, lambda _m, name: under(name, "conformance", "tests", "support", "pytest")) == []


def test_only_the_engine_imports_llama_cpp():
    for package in ("hearth", "handlers"):
        assert offenders(package, lambda m, name: under(name, "llama_cpp") and not under(m, "hearth.engine")) == []


def test_handlers_see_the_engine_through_its_api_only():
    allowed = ("hearth.engine", "hearth.engine.api")
    assert offenders("handlers", lambda _m, name: under(name, "hearth.engine") and name not in allowed
                     and not name.startswith("hearth.engine.api.")) == []


def test_lower_layers_never_import_higher_ones():
    # engine < structured, gguf < models < web, app < handlers
    assert offenders("hearth/engine", lambda _m, name: under(name, "hearth.models", "hearth.web", "hearth.app",
                                                            "handlers", "generated", "connexion", "starlette")) == []
    assert offenders("hearth/structured", lambda _m, name: under(name, "hearth.models", "hearth.web", "hearth.app",
                                                                "handlers", "connexion", "starlette")) == []
    assert offenders("hearth/models", lambda _m, name: under(name, "hearth.web", "hearth.app", "handlers",
                                                            "generated", "connexion", "starlette")) == []


def test_importing_the_app_loads_no_test_code_and_no_model_runtime():
    code = ("import sys, hearth.app, hearth.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'conformance', 'tests', 'support', 'pytest', "
            "'schemathesis', 'llama_cpp'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.strip() == "[]"
