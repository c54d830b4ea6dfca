"""The container files (``Dockerfile``, ``deploy/compose.yaml``), which cannot be built here.

What can be checked without Docker is checked: the image installs exactly what ``make serve``
installs (the same commands, from the hashed lock), runs ``tidings serve`` as a user that is not
root with a health check on ``/readyz``; every ``TIDINGS_*`` name in compose is a setting, every
file it mounts exists, the one-shot migrate service runs a real command; and the nginx config
of the compose file is accepted by nginx and proxies to two instances.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml  # type: ignore[import-untyped]  # PyYAML (locked) ships no stubs

from tests.support import ServerThread, free_port, make_settings, require_binary
from tidings.cli import app as cli_app
from tidings.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
SETTINGS = {f"TIDINGS_{name.upper()}" for name in Settings.model_fields}
TIDINGS_SERVICES = ("migrate", "tidings-1", "tidings-2")


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "NAME=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    lines = [
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    out = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def makefile_recipe(target: str) -> list[str]:
    """The recipe lines of ``target``, with the Makefile's variables expanded."""
    text = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^([A-Z_]+)\s*[:?]?=\s*(.*?)\s*$", text, re.MULTILINE))

    def expand(value: str) -> str:
        while (found := re.search(r"\$\(([A-Z_]+)\)", value)) is not None:
            value = value.replace(found.group(0), variables[found.group(1)])
        return value

    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(expand(line.strip()))
    return recipe


def test_compose_names_real_settings_and_commands() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "nginx", *TIDINGS_SERVICES} <= set(services)
    for name, service in services.items():
        names = set(environment(service))
        unknown = {n for n in names if n.startswith("TIDINGS_")} - SETTINGS
        assert not unknown, f"{name}: not settings: {sorted(unknown)}"
        if name in TIDINGS_SERVICES:
            assert names <= SETTINGS, f"{name}: {sorted(names - SETTINGS)}"
            assert service["build"]["context"] == ".."
            assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
    commands = {c.name or c.callback.__name__ for c in cli_app.registered_commands if c.callback}
    migrate = services["migrate"]
    assert migrate["command"][0] == "tidings" and migrate["command"][1] in commands
    assert migrate["restart"] == "no"
    for name in ("tidings-1", "tidings-2"):
        service = services[name]
        assert "command" not in service, "the image's CMD: tidings serve"
        assert service["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert environment(service)["TIDINGS_AUTO_MIGRATE"] == "false"
        url = environment(service)["TIDINGS_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
        assert environment(service)["TIDINGS_BROKER_URL"].startswith("redis://redis:")
    # The settings a compose value sets parse as that setting does.
    values = {
        k.removeprefix("TIDINGS_").lower(): v for k, v in environment(services["tidings-1"]).items()
    }
    Settings.model_validate(values)


def test_compose_mounts_exist() -> None:
    spec = compose()
    declared = set(spec.get("volumes") or {})
    mounted = []
    for name, service in spec["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).is_file(), f"{name} mounts {source}, which is missing"
                mounted.append((DEPLOY / source).resolve())
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
    assert (DEPLOY / "tidings-proxy.conf").resolve() in mounted


def test_dockerfile_installs_what_the_makefile_installs() -> None:
    steps = dockerfile()
    run = [args for word, args in steps if word == "RUN"]
    pip = [args for args in run if " -m pip " in args]
    assert pip == [line for line in makefile_recipe("$(VENV)/.runtime") if " -m pip " in line]
    assert pip[0].endswith("install --require-hashes -r requirements/lock.txt")
    assert pip[1].endswith("install --no-deps -e .")
    venv = makefile_recipe("$(BIN)/python")[1].split(" ||")[0].lstrip("@")
    assert venv in run, venv
    for word, args in steps:
        if word == "COPY":
            *sources, _ = shlex.split(args)
            for source in sources:
                assert (ROOT / source).exists(), f"COPY {source}: missing"


def test_dockerfile_serves_as_a_user_with_a_health_check() -> None:
    steps = dockerfile()
    words = [word for word, _ in steps]
    base = dict(steps)["FROM"]
    assert re.fullmatch(r"python:3\.11-slim(@sha256:[0-9a-f]{64})?", base), base
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the server must not run as root"
    assert words.index("USER") < words.index("CMD")
    cmd = shlex.split(dict(steps)["CMD"].replace("[", "").replace("]", "").replace(",", " "))
    assert cmd[:4] == ["tidings", "serve", "--host", "0.0.0.0"]
    health = dict(steps)["HEALTHCHECK"]
    assert "/readyz" in health and "8000" in health
    for word, args in steps:
        if word == "ENV":
            for name in re.findall(r"(TIDINGS_[A-Z_]+)=", args):
                assert name in SETTINGS, name


@pytest.mark.nginx
def test_compose_nginx_config_proxies_two_instances(tmp_path: Path) -> None:
    """deploy/compose-nginx.conf with deploy/tidings-proxy.conf, as compose mounts them, the
    two instance names pointed at two real servers: nginx accepts it, /readyz answers through
    it and the operator API is not on this side."""
    nginx = require_binary("nginx", "/usr/sbin/nginx")
    servers = []
    try:
        for i in (1, 2):
            (tmp_path / str(i)).mkdir()
            servers.append(ServerThread(make_settings(str(tmp_path / str(i)))).start())
        port = free_port()
        site = (DEPLOY / "compose-nginx.conf").read_text()
        for i, server in enumerate(servers, start=1):
            site = site.replace(f"tidings-{i}:8000", f"127.0.0.1:{server.port}")
        site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
        site = site.replace(
            "/etc/nginx/snippets/tidings-proxy.conf", str(DEPLOY / "tidings-proxy.conf")
        )
        site = site.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
        (tmp_path / "site.conf").write_text(site)
        user = "user root;\n" if os.geteuid() == 0 else ""
        main = tmp_path / "nginx.conf"
        main.write_text(
            f"{user}worker_processes 1;\npid {tmp_path}/nginx.pid;\n"
            f"error_log {tmp_path}/error.log;\nevents {{ worker_connections 64; }}\n"
            f"http {{ client_body_temp_path {tmp_path}/body; proxy_temp_path {tmp_path}/proxy; "
            f"include {tmp_path}/site.conf; }}\n"
        )
        args = [nginx, "-p", str(tmp_path), "-c", str(main)]
        checked = subprocess.run([*args, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        proc = subprocess.Popen([*args, "-g", "daemon off;"])
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
                deadline = time.monotonic() + 10
                while True:  # until nginx listens (bounded)
                    assert proc.poll() is None, "nginx exited"
                    try:
                        r = client.get("/readyz")
                        break
                    except httpx.ConnectError:
                        assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                        time.sleep(0.05)
                assert r.status_code == 200, r.text
                assert client.get("/v1/admin/tenants").status_code == 404
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    finally:
        for server in servers:
            server.stop()
