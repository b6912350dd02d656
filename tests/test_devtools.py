"""The development tools live apart from the product (devtools/: the gateway emulator, the
chaos run, the benchmarks and their commands), keep the commands and flags the Makefile,
Procfile.dev and README use, and load numpy and OpenCV only in their own processes: a web
or worker process never holds them, even with them installed."""

import ast

import pytest
from django.core.management import get_commands, load_command_class

from tests.stack import ROOT
from tests.test_requirements import LOAD_EVERYTHING, WITHOUT_DEVELOPMENT_PACKAGES, run

LOADED = ('print("loaded:", sorted({name.split(".")[0] for name in sys.modules}'
          ' & {"numpy", "cv2", "httpx", "devtools"}))')
# Every module of the product and its commands (tests/test_requirements.py), here with the
# development packages installed and importable.
PRODUCT = "import sys\n" + LOAD_EVERYTHING.removeprefix(WITHOUT_DEVELOPMENT_PACKAGES) + LOADED
# What a web worker loads: the WSGI application and every view the URL configuration names.
WEB_PROCESS = "import sys, django\ndjango.setup()\nimport studio.wsgi, studio.urls\n" + LOADED
# An emulator's process: its image models arrive when it starts, not when it is imported.
EMULATOR_PROCESS = """
import sys
import django
django.setup()
from devtools.emulator.server import EmulatorServer
imported = sorted(name for name in ("numpy", "cv2") if name in sys.modules)
with EmulatorServer(port=0):
    print("imported:", imported, "started:", sorted(name for name in ("numpy", "cv2") if name in sys.modules))
"""


def last_line(tmp_path, code):
    exit_code, output = run(tmp_path, code)
    assert exit_code == 0, output
    return output.strip().splitlines()[-1]


def test_no_process_of_the_product_holds_numpy_or_opencv(tmp_path):
    pytest.importorskip("numpy")  # installed (requirements-dev.txt), and still not loaded
    assert last_line(tmp_path, PRODUCT) == "loaded: ['devtools', 'httpx']", "devtools only for its command list"


def test_a_web_process_holds_no_http_client_either(tmp_path):
    """The web judges URLs at submit without one (jobs/addresses.py); only the worker
    requests them (jobs/fetch.py, jobs/gateway.py: httpx is some 8 MB a process)."""
    assert last_line(tmp_path, WEB_PROCESS) == "loaded: ['devtools']"


def test_the_emulator_loads_its_image_models_when_it_starts(tmp_path):
    assert last_line(tmp_path, EMULATOR_PROCESS) == "imported: [] started: ['cv2', 'numpy']"


def product_modules():
    for path in sorted([*ROOT.glob("studio/**/*.py"), *ROOT.glob("jobs/**/*.py"), ROOT / "manage.py"]):
        yield path, ast.parse(path.read_text(), str(path))


def test_the_product_never_imports_the_tools():
    imports = set()
    for path, tree in product_modules():
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            imports |= {f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] == "devtools"}
    assert imports == set()


def test_nothing_of_the_tools_is_left_among_the_products_apps():
    leftovers = [str(path.relative_to(ROOT)) for pattern in ("jobs/emulator", "jobs/chaos.py", "studio/benchmarks")
                 for path in ROOT.glob(pattern)]
    assert leftovers == []
    for path, tree in product_modules():
        text = path.read_text()
        assert "render_fibo" not in text and "EmulatorServer" not in text, path


@pytest.mark.parametrize("command, flags", [
    ("pixazo_emulator", {"--port", "--host", "--api-key", "--delay", "--allow-http-webhooks", "--duplicate-rate",
                         "--public-url"}),
    ("chaos", {"--jobs", "--seed", "--fault-rate", "--timeout", "--delay", "--kill-worker", "--force"}),
    ("bench", {"--duration", "--concurrency", "--report-entries", "--media", "--library-sizes"}),
    ("bench_spend_report", {"--entries", "--teams", "--members"}),
])
def test_the_tools_keep_their_commands_and_flags(command, flags):
    assert get_commands()[command] == "devtools"
    parser = load_command_class("devtools", command).create_parser("manage.py", command)
    assert flags <= {option for action in parser._actions for option in action.option_strings}
