"""The layer rule of rtcgw/__init__.py, checked rather than hoped for.

Sans-IO packages (sip, sdp, rules, media) must not import trio, sockets, clocks, threads or
the runtime packages; every package's ``__all__`` must name things that exist.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import rtcgw

PACKAGE_DIR = Path(rtcgw.__file__).parent
# worker/b2bua is runtime by location but sans-IO by design: the worker's trio edge
# drives it, and its tests run without a network.
SANS_IO_PACKAGES = ("sip", "sdp", "rules", "media", "registrations", "worker/b2bua")
FORBIDDEN_IN_SANS_IO = (
    "asyncio",
    "selectors",
    "socket",
    "subprocess",
    "threading",
    "time",
    "trio",
    "trio_websocket",
    "rtcgw.cli",
    "rtcgw.supervisor",
    "rtcgw.worker.main",
    "rtcgw.worker.settings",
)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _sans_io_files() -> list[Path]:
    files: list[Path] = []
    for package in SANS_IO_PACKAGES:
        folder = PACKAGE_DIR / package
        if folder.is_dir():
            files.extend(sorted(folder.rglob("*.py")))
    return files


def test_sans_io_packages_exist() -> None:
    # The rule below would pass vacuously if the folder moved: make sure it checks code.
    assert any(f.parent.name == "sip" for f in _sans_io_files())


@pytest.mark.parametrize(
    "path", _sans_io_files(), ids=lambda p: str(p.relative_to(PACKAGE_DIR.parent))
)
def test_sans_io_module_imports_no_io(path: Path) -> None:
    bad = sorted(
        name
        for name in _imported_modules(path)
        for forbidden in FORBIDDEN_IN_SANS_IO
        if name == forbidden or name.startswith(forbidden + ".")
    )
    assert bad == [], f"{path.name} imports {bad}, which the sans-IO layer rule forbids"


def _all_modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(rtcgw.__path__, prefix="rtcgw.")
        if not info.name.endswith(".__main__")
    )


@pytest.mark.parametrize("module_name", _all_modules())
def test_dunder_all_names_exist(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{module_name} has no __all__"
    missing = [name for name in public if not hasattr(module, name)]
    assert missing == [], f"{module_name}.__all__ names missing attributes {missing}"
