"""The suite itself: what it refuses and what it leaves behind."""

from __future__ import annotations

import warnings

import pytest

from tests.conftest import removed_in_django_warnings


def test_djangos_warnings_about_its_next_versions_fail_a_test() -> None:
    found = removed_in_django_warnings()
    assert found  # every supported Django announces at least its next version
    for warning in found:
        with pytest.raises(warning):
            warnings.warn(f"{warning.__name__} raised by the package", warning, stacklevel=1)
