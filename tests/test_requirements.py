"""Runtime requirements hold only what production runs. requirements.txt is what the
production processes install; the emulator's image models (numpy, OpenCV), honcho and the
test tools are in requirements-dev.txt. So the product must start without them: the
gateway's request contract lives in the product (jobs/contract.py) and the emulator
imports it, never the other way round, and only the development tools (devtools/: the
`pixazo_emulator`, `chaos` and `bench` commands) import the emulator or test helpers."""

import ast
import importlib.metadata
import re
import sys

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.stack import ROOT, Process

# What `make run` and the tests install beside the runtime, and the tests' own helpers:
# none of it in production.
DEVELOPMENT_ONLY = ("numpy", "cv2", "honcho", "moto", "aiosmtpd", "playwright", "schemathesis", "hypothesis",
                    "tests")
# Development tools, which `make run`, `make bench` and the tests run with the development
# requirements installed: the emulator, the chaos run (the emulator in-process) and the
# benchmark (the emulator and a moto S3 server as processes).
TOOLING = ("devtools",)
PRODUCTION_COMMANDS = ("release", "check", "migrate", "collectstatic", "qcluster", "verify_ledger", "topup", "create_api_key")
# Run before anything else in a child: importing any development-only package fails.
WITHOUT_DEVELOPMENT_PACKAGES = f"import sys\nfor name in {DEVELOPMENT_ONLY!r}:\n    sys.modules[name] = None\n"

LOAD_EVERYTHING = WITHOUT_DEVELOPMENT_PACKAGES + f"""
import importlib, pkgutil
import django
django.setup()
import studio.wsgi
from django.core.management import get_commands, load_command_class
from django.urls import URLResolver, get_resolver

def views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from views(pattern.url_patterns)
        else:
            yield pattern.callback

import jobs, studio
modules = [module.name for package in (studio, jobs)
           for module in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
for name in modules:
    if not name.startswith({TOOLING!r}):
        importlib.import_module(name)
commands = get_commands()
for name in {PRODUCTION_COMMANDS!r}:
    load_command_class(commands[name], name)
print(len(list(views(get_resolver().url_patterns))), "views", len(modules), "modules",
      "emulator loaded" if "devtools.emulator.server" in sys.modules else "emulator not loaded")
"""
MANAGE = WITHOUT_DEVELOPMENT_PACKAGES + """
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", *sys.argv[1:]])
"""


def production_env(tmp_path):
    return {"DJANGO_SETTINGS_MODULE": "studio.settings", "DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": "r7-" * 20,
            "PIXAZO_API_KEY": "x", "CACHE_URL": "redis://127.0.0.1:6379/0", "REDIS_URL": "", "DATABASE_URL": "",
            "SQLITE_PATH": str(tmp_path / "studio.sqlite3"), "STUDIO_VAR_DIR": str(tmp_path),
            "STATIC_ROOT": str(tmp_path / "static")}


def run(tmp_path, *argv):
    process = Process("python", [sys.executable, "-c", *argv], production_env(tmp_path), tmp_path)
    try:
        return process.popen.wait(120), process.output()
    finally:
        process.stop()


def test_the_product_loads_every_view_module_and_command_without_development_packages(tmp_path):
    code, output = run(tmp_path, LOAD_EVERYTHING)
    assert code == 0, output
    views, _, modules, _, emulator = output.splitlines()[-1].split(" ", 4)
    assert int(views) > 100 and int(modules) > 100
    assert emulator == "emulator not loaded"


def test_the_emulator_is_what_needs_them(tmp_path):
    code, output = run(tmp_path, WITHOUT_DEVELOPMENT_PACKAGES + "import devtools.emulator.images")
    assert code != 0 and re.search(r"import of (numpy|cv2) halted", output)


@pytest.mark.parametrize("command", [["check", "--deploy"], ["migrate", "--no-input"]])
def test_the_release_commands_run_without_development_packages(command, tmp_path):
    code, output = run(tmp_path, MANAGE, *command)
    assert code == 0, output


def test_the_worker_starts_without_development_packages(tmp_path):
    assert run(tmp_path, MANAGE, "migrate", "--no-input")[0] == 0
    worker = Process("worker", [sys.executable, "-c", MANAGE, "qcluster"], production_env(tmp_path), tmp_path)
    try:
        worker.wait_for_log(" running.")
    finally:
        worker.stop()
    assert "Traceback" not in worker.output()


# -- what requirements.txt installs ------------------------------------------------------


def requirements(name):
    lines = (line.split("#", 1)[0].strip() for line in (ROOT / name).read_text().splitlines())
    return [Requirement(line) for line in lines if line and not line.startswith("-")]


def installed_by(pins):
    """Every distribution pip installs for these pins: each one and, through the installed
    metadata, what it requires (with the extras asked for), all the way down."""
    pending, seen = list(pins), set()
    while pending:
        pin = pending.pop()
        key = (canonicalize_name(pin.name), frozenset(pin.extras))
        if key in seen:
            continue
        seen.add(key)
        for line in importlib.metadata.requires(pin.name) or []:
            needed = Requirement(line)
            if needed.marker is None or any(needed.marker.evaluate({"extra": extra}) for extra in pin.extras or {""}):
                pending.append(needed)
    return {name for name, _ in seen}


def product_files():
    """The product's Python files: not the tests, not the development tools."""
    for path in sorted([ROOT / "manage.py", *ROOT.glob("studio/**/*.py"), *ROOT.glob("jobs/**/*.py")]):
        if not ".".join(path.relative_to(ROOT).with_suffix("").parts).startswith(TOOLING):
            yield path


def imported_packages(path):
    """The top-level names a file imports, wherever the import statement is."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module.split(".")[0]


def test_every_package_the_product_imports_is_installed_by_the_runtime_requirements():
    runtime = installed_by(requirements("requirements.txt"))
    distributions = importlib.metadata.packages_distributions()
    missing = set()
    for path in product_files():
        for name in set(imported_packages(path)) - set(sys.stdlib_module_names) - {"studio", "jobs"}:
            if not {canonicalize_name(d) for d in distributions.get(name, [])} & runtime:
                missing.add(f"{path.relative_to(ROOT)} imports {name}")
    assert not missing


def test_the_runtime_requirements_install_nothing_only_development_needs():
    development = {canonicalize_name(pin.name) for pin in requirements("requirements-dev.txt")}
    assert development and not development & installed_by(requirements("requirements.txt"))
