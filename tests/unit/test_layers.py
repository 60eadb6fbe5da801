"""The packages' layering: the core imports no layer above it; handlers never name a platform."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from chathooks.platforms.registry import PLATFORMS

ROOT = Path(__file__).resolve().parents[2]
ABOVE = {  # a package may not import these
    "chathooks": {"app", "workers", "cli"},
    "app": {"workers", "cli"},
    "workers": {"app", "cli"},
}


def imported(path: Path) -> set[str]:
    """The top-level packages a module imports, at any depth (lazy imports in functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(ABOVE))
def test_no_package_imports_a_layer_above_it(package):
    offenders = {str(p.relative_to(ROOT)): sorted(imported(p) & ABOVE[package])
                 for p in (ROOT / package).rglob("*.py") if imported(p) & ABOVE[package]}
    assert offenders == {}


def test_handlers_never_name_a_platform():
    for path in (ROOT / "workers" / "handlers").glob("*.py"):
        text = path.read_text().lower()
        named = [source for source in PLATFORMS if f'"{source}"' in text or f"'{source}'" in text]
        assert not named, f"{path.name} names {named}"
        assert "livechat" not in imported(path) and "platforms.livechat" not in text


def test_every_platform_has_a_package_and_a_blueprint_named_after_its_source():
    from app.webhooks import SOURCES

    assert set(PLATFORMS) <= {module.bp.name for module in SOURCES}
    for source in PLATFORMS:
        assert (ROOT / "chathooks" / "platforms" / source / "adapter.py").is_file()
