"""A headless JupyterLab on a free localhost port, and Chromium, for tests/test_browser.py."""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

INSTALL_HINT = (
    "install Chromium and Playwright to run the browser test: "
    "`sudo apt-get install chromium` and `pip install playwright` "
    "(or set COURSE_CHROMIUM=/path/to/chromium)"
)

# JupyterLab settings for the test: no news pop-up, and every cell kept in the page.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


def find_chromium():
    """The Chromium to drive: $COURSE_CHROMIUM, else `chromium` (Debian) or `chromium-browser`."""
    names = [os.environ.get("COURSE_CHROMIUM"), "chromium", "chromium-browser"]
    for name in filter(None, names):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JupyterLab:
    """`make lab`'s JupyterLab, headless, on a free localhost port with a random token.

    Config, data, runtime files, settings and workspaces live in `home` (a temporary folder), so
    the test neither reads nor changes the user's JupyterLab; the kernel is this Python's.
    Use as a context manager.
    """

    def __init__(self, notebook_dir, home, log_path, start_timeout=60):
        self.notebook_dir, self.home = Path(notebook_dir), Path(home)
        self.log_path, self.start_timeout = Path(log_path), start_timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = None

    def __enter__(self):
        settings = self.home / "settings"
        for plugin, values in LAB_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = dict(
            os.environ,
            JUPYTER_CONFIG_DIR=str(self.home / "config"),
            JUPYTER_DATA_DIR=str(self.home / "data"),
            JUPYTER_RUNTIME_DIR=str(self.home / "runtime"),
            PYTHONUNBUFFERED="1",
        )
        command = [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            f"--notebook-dir={self.notebook_dir}",
            "--ServerApp.ip=127.0.0.1",
            "--no-browser",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={self.home / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")  # containers and CI often run as root
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def api(self, path, method="GET", timeout=5):
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def _wait_until_ready(self):
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"JupyterLab exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                self.api("/api/status", timeout=2)
                return
            except OSError:
                time.sleep(0.25)
        raise TimeoutError(f"JupyterLab not ready after {self.start_timeout} s:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace")[-3000:]

    def shutdown_kernels(self):
        """Stop every kernel the server runs (they are not children it would take down)."""
        try:
            for kernel in self.api("/api/kernels"):
                self.api(f"/api/kernels/{kernel['id']}", method="DELETE", timeout=10)
        except OSError:
            pass  # the server is gone already, and its kernels with it

    def stop(self):
        """Shut the kernels and the server down; kill it if it does not stop within 10 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.shutdown_kernels()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._log.close()
