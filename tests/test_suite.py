"""The suite itself: what it refuses and what it leaves behind."""

from __future__ import annotations

import warnings

import pytest

from active_users import history
from active_users.backends import Presence, get_backend
from tests.conftest import _redis_backend, removed_in_django_warnings
from tests.redis_server import keys_under


def test_djangos_warnings_about_its_next_versions_fail_a_test() -> None:
    found = removed_in_django_warnings()
    assert found  # every supported Django announces at least its next version
    for warning in found:
        with pytest.raises(warning):
            warnings.warn(f"{warning.__name__} raised by the package", warning, stacklevel=1)


@pytest.mark.django_db
def test_a_test_on_redis_leaves_no_key_behind(redis_url: str) -> None:
    fixture = _redis_backend(redis_url)
    prefix = next(fixture)["ACTIVE_USERS_KEY_PREFIX"]
    get_backend().touch(Presence('["1"]', "1"))
    history.record_minute()
    written = {key.decode().split(":", 1)[1] for key in keys_under(redis_url, f"{{{prefix}}}*")}
    assert {"entries", "history:minutes"} <= written
    assert any(key.startswith("uniques:users:") for key in written)  # kept for 400 days
    next(fixture, None)  # the fixture's teardown
    assert keys_under(redis_url, f"{{{prefix}}}*") == []


def test_the_package_type_checks_under_mypy_strict() -> None:
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    mypy = Path(sys.executable).with_name("mypy")
    if not mypy.exists() and not shutil.which("mypy"):
        if os.environ.get("CI") == "true":
            pytest.fail("mypy is not installed (it is in the test extra)")
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([str(mypy if mypy.exists() else "mypy")], cwd=root,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert "Success: no issues found" in done.stdout
