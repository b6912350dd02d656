"""The shape of the code, kept by tests: the native API's routers and the HTML views sit
side by side on the same access lookups and domain functions (each app's access.py,
actions, models), so no API module leans on a views module; and in jobs/, only
transitions.py writes a job's row (a job is born in actions.start_job), so the tasks and
the webhook receiver only decide and do the I/O."""

import ast

from tests.stack import ROOT

SOURCE = [ROOT / "studio", ROOT / "jobs"]


def imported_modules(path):
    """Every module `path` imports, by its dotted name (`from a import b` gives a.b too,
    since b may be a module)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            yield base
            yield from (f"{base.rstrip('.')}.{alias.name}" if node.module else base + alias.name for alias in node.names)


def is_views(module):
    return module.rsplit(".", 1)[-1] == "views"


def api_modules():
    return sorted(path for folder in SOURCE for path in folder.rglob("api.py"))


def test_the_api_modules_are_found():
    names = {str(path.relative_to(ROOT)) for path in api_modules()}
    assert {"jobs/api.py", "studio/library/api.py", "studio/gallery/api.py", "studio/billing/api.py"} <= names


def test_no_api_module_imports_a_views_module():
    offenders = {str(path.relative_to(ROOT)): sorted({m for m in imported_modules(path) if is_views(m)})
                 for path in api_modules()}
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_check_sees_every_way_of_importing_views(tmp_path):
    for line in ["from jobs.views import get_job_for_member", "import studio.gallery.views",
                 "from studio.library import views", "from . import views", "from .views import x"]:
        module = tmp_path / "api.py"
        module.write_text(line + "\n")
        assert any(is_views(m) for m in imported_modules(module)), line
    module.write_text("from studio.gallery.access import share_url\nfrom ninja import Router\n")
    assert not any(is_views(m) for m in imported_modules(module))


JOB_WRITES = {"update", "delete", "save", "create", "bulk_create", "bulk_update", "get_or_create", "update_or_create"}
# Where a job's row may be written, and how.
JOB_WRITERS = {"jobs/transitions.py": JOB_WRITES, "jobs/actions.py": {"create"}}


def root_name(node):
    """`Job` for Job.objects.filter(...).update, `job` for job.save."""
    while isinstance(node, (ast.Attribute, ast.Call)):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else None


def job_writes(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in JOB_WRITES:
            if root_name(node.func.value) in ("Job", "job"):
                yield node.func.attr, node.lineno


def test_only_transitions_write_a_jobs_row():
    found = {}
    for path in sorted([*(ROOT / "jobs").rglob("*.py"), *(ROOT / "studio").rglob("*.py")]):
        name = str(path.relative_to(ROOT))
        writes = [(w, line) for w, line in job_writes(path) if w not in JOB_WRITERS.get(name, ())]
        if writes and "/migrations/" not in name:
            found[name] = writes
    assert found == {}


def test_the_check_sees_a_job_write(tmp_path):
    module = tmp_path / "tasks.py"
    module.write_text("Job.objects.filter(pk=1).in_flight().update(next_poll_at=None)\njob.save()\n"
                      "Lease.objects.filter(name='x').update(holder='y')\nasset.save()\n")
    assert list(job_writes(module)) == [("update", 1), ("save", 2)]
