"""Every package folder in the repository is listed in pyproject, so a normal (non-editable)
install carries all of shoal."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_folder_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"shoal"}
    for init in ROOT.rglob("__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts and rel.parts[0] in {"tests", ".venv", "build"} or any(p.startswith(".") for p in rel.parts):
            continue
        if rel.parts:
            found.add("shoal." + ".".join(rel.parts))
    assert found - listed == set(), f"add these to [tool.setuptools] packages: {sorted(found - listed)}"
