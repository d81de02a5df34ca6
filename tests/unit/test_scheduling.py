"""The suite's scheduler (tests/conftest.py): a file's tests on one worker,
its module fixtures set up once; the timing group together."""
import os
import subprocess
import sys
import textwrap

from tests.conftest import TIMING_GROUP, work_unit
from tests.support import PROJECT_DIR

MODULE = textwrap.dedent("""
    import os
    import pytest

    @pytest.fixture(scope="module")
    def shared(request):
        with open(os.environ["SETUPS"], "a") as log:
            log.write(f"{request.module.__name__} setup\\n")

    @pytest.mark.parametrize("n", range(8))
    def test_one(shared, n, worker_id):
        with open(os.environ["SETUPS"], "a") as log:
            log.write(f"{__name__} ran on {worker_id}\\n")
""")


def test_each_file_runs_on_one_worker_with_its_module_fixtures_set_up_once(tmp_path):
    for name in ("test_alpha.py", "test_beta.py", "test_gamma.py"):
        (tmp_path / name).write_text(MODULE)
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_xdist_make_scheduler  # noqa: F401\n")
    setups = tmp_path / "setups.log"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "-n", "2", "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SETUPS": str(setups), "PYTHONPATH": str(PROJECT_DIR)},
    )
    assert result.returncode == 0, result.stdout + result.stderr

    lines = setups.read_text().splitlines()
    for module in ("test_alpha", "test_beta", "test_gamma"):
        assert lines.count(f"{module} setup") == 1, lines
        workers = {line.rsplit(" ", 1)[1] for line in lines if line.startswith(f"{module} ran on")}
        assert len(workers) == 1, (module, workers)
    assert len({line.rsplit(" ", 1)[1] for line in lines if " ran on " in line}) == 2  # both worked


def test_the_timing_files_share_a_unit_and_every_other_file_is_its_own():
    assert {work_unit(f"{path}::test_x[1]") for path in TIMING_GROUP} == {"timing"}
    assert all((PROJECT_DIR / path).is_file() for path in TIMING_GROUP)
    assert work_unit("tests/e2e/test_browser.py::test_a") == "tests/e2e/test_browser.py"
    assert work_unit("tests/unit/test_x.py::Test::test_b") == "tests/unit/test_x.py"
