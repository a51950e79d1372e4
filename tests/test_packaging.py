"""pyproject.toml declares the dependencies once; the requirements files are compiled from it
with hashes; `pip install .` ships exactly the project's packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def compiled(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile'd, hashed requirements file."""
    out: dict[str, tuple[str, list[str]]] = {}
    logical = (ROOT / path).read_text().replace("\\\n", " ")
    for line in logical.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("--hash") else line.strip()
        if not line or line.startswith("-"):
            continue
        spec, *options = line.split(" --hash=")
        req = Requirement(spec.strip())
        [pin] = list(req.specifier)
        assert pin.operator == "==", f"{path}: {req} is not pinned exactly"
        out[canonicalize_name(req.name)] = (pin.version, [o.strip() for o in options])
    return out


def declared(items: list[str]) -> dict[str, str]:
    pins = {}
    for item in items:
        req = Requirement(item)
        [pin] = list(req.specifier)
        assert pin.operator == "==", f"pyproject: {item} is not pinned exactly"
        pins[canonicalize_name(req.name)] = pin.version
    return pins


def test_the_compiled_files_pin_every_package_with_hashes_and_agree():
    runtime, dev = compiled(Path("requirements.txt")), compiled(Path("requirements-dev.txt"))

    for name, (version, hashes) in {**runtime, **dev}.items():
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{name}=={version} has no hash"
    # Everything the runtime file installs, the dev file installs at the same version.
    assert {n: v for n, (v, _) in runtime.items()} == {n: dev[n][0] for n in runtime}


def test_the_compiled_files_follow_pyproject():
    runtime, dev = compiled(Path("requirements.txt")), compiled(Path("requirements-dev.txt"))
    direct = declared(PYPROJECT["project"]["dependencies"])
    extra = declared(PYPROJECT["project"]["optional-dependencies"]["dev"])

    assert {n: runtime[n][0] for n in direct} == direct, "run scripts/compile-requirements"
    assert {n: dev[n][0] for n in extra} == extra, "run scripts/compile-requirements"
    assert not set(extra) & set(runtime), "a dev-only package is in the runtime requirements"


def test_the_package_list_names_every_python_package_of_the_project():
    from setuptools import find_packages

    # Layer packages come and go; the find rule must still take every one of them and no other.
    listed = set(find_packages(where=str(ROOT), **PYPROJECT["tool"]["setuptools"]["packages"]["find"]))
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("bindings", "dashboard")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert listed == found


@pytest.mark.slow
def test_pip_builds_a_wheel_with_the_packages_and_nothing_else(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [wheel] = tmp_path.glob("binding_health-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"bindings", "dashboard", "binding_health-0.1.0.dist-info"}
    assert "bindings/crds/targetgroupbinding-v1beta1.schema.json" in names
    assert "bindings/migrations/0001_initial.py" in names
    metadata = zipfile.ZipFile(wheel).read("binding_health-0.1.0.dist-info/METADATA").decode()
    assert "Requires-Dist: Django==5.2.19" in metadata
    assert 'Requires-Dist: pytest==8.4.2; extra == "dev"' in metadata
