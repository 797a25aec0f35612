"""The pure packages import as the layers say, with Odoo and psycopg2 gone.

Each package's modules are imported in a fresh interpreter where ``odoo`` and
``psycopg2`` cannot be imported at all (and, for parsers and the engine,
neither can paho): an import of either fails the test, as does any module of
a layer the package must not reach (the runner, the models; the transport
from the engine).
"""

import json
import pathlib
import subprocess
import sys

import pytest

ADDON_DIR = pathlib.Path(__file__).resolve().parents[3]

PROBE = r"""
import importlib, json, pathlib, sys

blocked = set(sys.argv[3].split(","))

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            raise ImportError(f"{name} must not be imported here")

sys.meta_path.insert(0, Blocker())
root = pathlib.Path(sys.argv[1])
sys.path.insert(0, str(root.parent))
package = root.name
imported = []
for path in sorted((root / sys.argv[2]).glob("*.py")):
    name = ".".join((package, *path.relative_to(root).with_suffix("").parts))
    importlib.import_module(name.removesuffix(".__init__"))
    imported.append(name)
print(json.dumps({"imported": imported, "modules": sorted(sys.modules)}))
"""

LAYERS = {
    # package: (modules it may not reach, top-level imports blocked)
    "parsers": (("services", "models"), "odoo,psycopg2,paho"),
    "services/engine": (
        ("services.mqtt", "services.runner", "models"),
        "odoo,psycopg2,paho",
    ),
    "services/mqtt": (
        ("services.engine", "services.runner", "models", "parsers"),
        "odoo,psycopg2",
    ),
}


def _probe(link_dir, package_dir, blocked):
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(link_dir), package_dir, blocked],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("package_dir", sorted(LAYERS))
def test_pure_package_imports_without_odoo(package_dir, tmp_path):
    # The addon under its own name, whatever this checkout's folder is called.
    link = tmp_path / "open_workshop_mqtt"
    link.symlink_to(ADDON_DIR)
    forbidden, blocked = LAYERS[package_dir]
    got = _probe(link, package_dir, blocked)
    expected = sorted((ADDON_DIR / package_dir).glob("*.py"))
    assert len(got["imported"]) == len(expected) > 1
    reached = [
        m
        for m in got["modules"]
        for layer in forbidden
        if m == f"open_workshop_mqtt.{layer}"
        or m.startswith(f"open_workshop_mqtt.{layer}.")
    ]
    assert reached == [], f"{package_dir} reaches {reached}"
    assert not [m for m in got["modules"] if m.split(".")[0] in blocked.split(",")]


def test_the_probe_fails_on_a_forbidden_import(tmp_path):
    """The check itself: a module importing psycopg2 makes the probe fail."""
    pkg = tmp_path / "open_workshop_mqtt"
    (pkg / "leaky").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "leaky" / "__init__.py").write_text("")
    (pkg / "leaky" / "writer.py").write_text("import psycopg2\n")
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(pkg), "leaky", "odoo,psycopg2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "psycopg2 must not be imported here" in out.stderr
