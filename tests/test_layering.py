"""Each module imports only from the layers below it, and third-party I/O only where it is owned."""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import asyncrouter

ROOT = Path(asyncrouter.__file__).parent

# module -> asyncrouter modules it may import ("*" = anything)
BASE = {"_types", "_exceptions"}
CORE = BASE | {"_config", "_models", "_clock", "_tokens"}
ALLOWED: dict[str, set[str] | str] = {
    "_types": set(),
    "_exceptions": set(),
    "_tokens": set(),
    "_clock": {"_types"},
    "_config": BASE,
    "_models": BASE,
    "_classifier": CORE,
    "_eval": CORE | {"_classifier"},
    "_judge": CORE | {"_engine"},
    "_experiment": CORE | {"_engine"},
    "_quality": CORE,
    "_sse": CORE,
    "_http": CORE,
    "_breaker": CORE,
    "_store": CORE,
    "_pricing": CORE,
    "_budget": CORE | {"_pricing"},
    "_meta": CORE,
    "_strategies": CORE | {"_classifier"},
    "_embeddings": CORE | {"_eval", "providers"},
    "_planner": CORE | {"_classifier"},
    "_alerts": CORE | {"_http", "_budget", "_breaker"},
    "_breaker_sync": CORE | {"_breaker"},
    "_demo": "*",
    "providers": CORE | {"_http", "_sse", "providers"},
    "_engine": "*",
    "_batch": CORE,
    "_ratelimit": CORE,
    "__init__": "*",
    "__main__": "*",
    "cli": "*",
    "server": "*",
    "testing": CORE | {"testing"},
}
# third-party package -> the only modules (prefixes) allowed to import it
OWNERS = {
    "aiohttp": ("_http", "testing", "server", "cli"),
    "aiosqlite": ("_store",),
    "pybreaker": ("_breaker",),
    "redis": ("_budget", "_breaker_sync", "_redis"),
}
NO_IO = {"_classifier", "_planner", "_quality", "_sse", "_tokens", "_meta", "_eval", "_strategies"}
IO_MODULES = {"anyio", "asyncio", "aiohttp", "aiosqlite", "socket", "time", "sqlite3", "redis"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for info in pkgutil.walk_packages([str(ROOT)]):
        rel = info.name.replace(".", "/")
        path = ROOT / (rel + ".py")
        if not path.exists():
            path = ROOT / rel / "__init__.py"
        out.append((info.name, path))
    out.append(("__init__", ROOT / "__init__.py"))
    return out


def _imports(path: Path, modname: str) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    pkg_parts = modname.split(".")
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.add(node.module or "")
            else:
                base = pkg_parts if is_pkg else pkg_parts[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
                found.add("asyncrouter." + target if target else "asyncrouter")
    return found


def _layer(modname: str) -> str:
    return modname.split(".")[0]


def test_layering() -> None:
    problems = []
    for modname, path in _modules():
        layer = _layer(modname)
        allowed = ALLOWED.get(layer)
        assert allowed is not None, f"{modname}: add it to the layering table"
        for imp in _imports(path, modname):
            top = imp.split(".")[0]
            if top == "asyncrouter":
                parts = imp.split(".")
                target = parts[1] if len(parts) > 1 else "__init__"
                if allowed != "*" and target not in allowed and target != layer:
                    problems.append(f"{modname} imports asyncrouter.{target}")
            elif top in OWNERS and not layer.startswith(OWNERS[top]):
                problems.append(f"{modname} imports {top}, owned by {OWNERS[top]}")
            if layer in NO_IO and top in IO_MODULES:
                problems.append(f"{modname} must do no I/O but imports {top}")
    assert problems == []


def test_pure_modules_have_no_async_def() -> None:
    for name in ("_classifier", "_planner", "_quality", "_sse"):
        path = ROOT / f"{name}.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text())
        if name == "_quality":
            continue  # runs the user's async gates; its built-in gates are sync
        assert not any(isinstance(n, ast.AsyncFunctionDef) for n in ast.walk(tree)), name
