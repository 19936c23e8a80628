"""The deploy/ files that the scale-out tests do not start: the nginx site (TLS in front of the
workers) must be a configuration nginx accepts, and the housekeeping unit's command must run."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
TIMEOUT = 60


@pytest.mark.services
def test_the_nginx_site_is_accepted_by_nginx(tmp_path):
    """`nginx -t` on deploy/nginx/mcp-site.conf, with a throwaway certificate in place of the real one."""
    nginx = "/usr/sbin/nginx"
    assert Path(nginx).exists(), "nginx is missing: `make test` installs it (Debian package nginx)"
    certificate, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=mcp.example.com",
            "-keyout",
            str(key),
            "-out",
            str(certificate),
        ],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    snippets = tmp_path / "snippets"
    snippets.mkdir()
    (snippets / "mcp-proxy.conf").write_text((DEPLOY / "nginx" / "mcp-proxy.conf").read_text())
    site = (DEPLOY / "nginx" / "mcp-site.conf").read_text()
    site = site.replace("/etc/letsencrypt/live/mcp.example.com/fullchain.pem", str(certificate))
    site = site.replace("/etc/letsencrypt/live/mcp.example.com/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n access_log off;\n include {tmp_path}/site.conf;\n}}\n"
    )
    result = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


def test_the_housekeeping_unit_runs(tmp_path):
    """deploy/systemd/mcp-housekeeping.service: its ExecStart, run on a migrated database."""
    unit = (DEPLOY / "systemd" / "mcp-housekeeping.service").read_text()
    (exec_start,) = [line.split("=", 1)[1] for line in unit.splitlines() if line.startswith("ExecStart=")]
    command = [sys.executable if part.endswith("/python") else part for part in shlex.split(exec_start)]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3", "DJANGO_DEBUG": "1"}
    env.pop("REDIS_URL", None)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert migrate.returncode == 0, migrate.stderr
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
