"""Root pytest hooks: without Fashion-MNIST, stop at once with the data-routes message.

Every notebook needs the data; without it nbval would report a failing cell in each one.
"""

import pytest


def pytest_collection_finish(session):
    if not any("notebooks" in item.path.parts for item in session.items):
        return
    from course_utils.data import DataNotFoundError, find_raw_data

    try:
        find_raw_data()
    except DataNotFoundError as err:
        pytest.exit(f"The notebooks need Fashion-MNIST and no route found it.\n{err}", returncode=1)
