import shutil
from pathlib import Path

import pytest

from course_utils import data

SYSTEM_DIR = Path(data.DATASETS["fashion-mnist"]["system_dir"])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No named directory, an empty course data folder, an empty system folder, no download."""
    monkeypatch.delenv("COURSE_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "course_data_dir", lambda: tmp_path / "course_data")
    monkeypatch.setitem(data.DATASETS["fashion-mnist"], "system_dir", str(tmp_path / "system"))

    def no_network(name, root):
        raise OSError("no network (simulated)")

    monkeypatch.setattr(data, "_download", no_network)
    data._CACHE.clear()
    yield tmp_path
    data._CACHE.clear()


@pytest.fixture
def fashion_files(tmp_path):
    """A copy of the real Fashion-MNIST .gz files in a folder of their own."""
    if not SYSTEM_DIR.is_dir():
        pytest.skip("needs the Debian package dataset-fashion-mnist")
    folder = tmp_path / "copy"
    shutil.copytree(SYSTEM_DIR, folder)
    return folder
