"""The images of sandbox_images/ cannot be built here (no container engine): their Dockerfiles are
parsed and checked against the repository (every COPY source exists, stages resolve), and what they
share with the chart and the local sandbox is checked not to drift (users, command, lock-down files,
pinned versions)."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "sandbox_images"
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
LOCKDOWN = ROOT / "enclave_api" / "hub" / "lockdown"
LOCKDOWN_FILES = ("jupyter_server_config.json", "labconfig/page_config.d/enclave-lockdown.json")
#: JupyterHub in each zero-to-jupyterhub chart version the enclave chart may depend on.
Z2JH_JUPYTERHUB = {"4.4.0": "5.5.0"}


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


def parse_dockerfile(path: Path) -> list[Stage]:
    """Stages of a Dockerfile: continuation lines joined, comments dropped, keywords checked."""
    lines = path.read_text().splitlines()
    assert lines[0] == "# syntax=docker/dockerfile:1", f"{path}: no syntax directive"
    logical: list[str] = []
    pending = ""
    for raw in lines:
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            logical.append(pending)
            pending = ""
    assert pending == "", f"{path}: a continuation runs off the end"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        assert keyword in INSTRUCTIONS, f"{path}: unknown instruction {keyword}"
        assert rest.strip(), f"{path}: {keyword} without arguments"
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"{path}: FROM {rest}"
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{path}: {keyword} before FROM"
            stages[-1].instructions.append((keyword, rest.strip()))
    return stages


def copy_sources(rest: str) -> tuple[list[str], str, str | None]:
    """``(sources, destination, --from stage)`` of a COPY."""
    words = shlex.split(rest)
    options = [w for w in words if w.startswith("--")]
    paths = [w for w in words if not w.startswith("--")]
    stage = next((o.split("=", 1)[1] for o in options if o.startswith("--from=")), None)
    return paths[:-1], paths[-1], stage


def pins(path: Path) -> dict[str, str]:
    """``name -> version`` of a requirements file that must pin every line with ``==``."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (spec,) = requirement.specifier
        assert spec.operator == "==", f"{path}: {line} is not pinned"
        name = canonicalize_name(requirement.name)
        assert name not in found, f"{path}: {name} twice"
        found[name] = spec.version
    return found


def runtime_packages() -> dict[str, str]:
    """The local sandbox runtime's packages (scripts/build-runtime.sh, PACKAGES=(...))."""
    script = (ROOT / "scripts" / "build-runtime.sh").read_text()
    block = re.search(r"^PACKAGES=\(\n(.*?)^\)", script, re.M | re.S)
    assert block is not None
    return {
        canonicalize_name(n): v for n, v in (line.strip().split("==") for line in block.group(1).splitlines())
    }


def chart_dependency_version() -> str:
    chart = yaml.safe_load((ROOT / "helm" / "enclave" / "Chart.yaml").read_text())
    (dependency,) = chart["dependencies"]
    return str(dependency["version"])


@pytest.mark.parametrize("image", ["singleuser", "api", "hub"])
def test_dockerfile_parses_and_its_sources_exist(image: str) -> None:
    stages = parse_dockerfile(IMAGES / image / "Dockerfile")
    names = [s.name for s in stages if s.name]
    assert len(names) == len(set(names))
    for index, stage in enumerate(stages):
        repository, _, tag = stage.image.rpartition(":")
        assert repository and tag and tag != "latest", f"{stage.image}: pin a tag"
        for keyword, rest in stage.instructions:
            assert keyword != "ADD", "COPY, never ADD (no remote sources)"
            if keyword != "COPY":
                continue
            sources, _, from_stage = copy_sources(rest)
            if from_stage is not None:
                assert from_stage in [s.name for s in stages[:index]], f"COPY --from={from_stage}"
                continue
            for source in sources:
                assert (ROOT / source).exists(), f"{image}: COPY {source}: not in the build context"
    final = stages[-1]
    users = [rest for keyword, rest in final.instructions if keyword == "USER"]
    assert users, "the final stage must set its user"
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"{image} runs as {users[-1]}"
    assert (IMAGES / image / "README.md").is_file()
    assert (IMAGES / image / "Dockerfile.dockerignore").is_file()


def test_the_parse_check_can_fail(tmp_path: Path) -> None:
    broken = tmp_path / "Dockerfile"
    broken.write_text("# syntax=docker/dockerfile:1\nFROM python:3.12-slim\nRUNN pip install x \\\n")
    with pytest.raises(AssertionError, match="continuation runs off the end"):
        parse_dockerfile(broken)
    broken.write_text("# syntax=docker/dockerfile:1\nFROM python:3.12-slim\nRUNN pip install x\n")
    with pytest.raises(AssertionError, match="unknown instruction RUNN"):
        parse_dockerfile(broken)


def test_images_run_as_the_users_the_chart_expects() -> None:
    from tests.helm.conftest import CHART_DIR

    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    helpers = (CHART_DIR / "templates" / "_helpers-api.tpl").read_text()
    api_user = [r for k, r in parse_dockerfile(IMAGES / "api" / "Dockerfile")[-1].instructions if k == "USER"]
    assert api_user[-1] == "10001:10001"
    assert "runAsUser: 10001\nrunAsGroup: 10001\nfsGroup: 10001" in helpers
    session_user = [
        r for k, r in parse_dockerfile(IMAGES / "singleuser" / "Dockerfile")[-1].instructions if k == "USER"
    ]
    kube = values["jupyterhub"]["hub"]["config"]["KubeSpawner"]["pod_security_context"]
    single = values["jupyterhub"]["singleuser"]
    assert session_user[-1] == f"{kube['runAsUser']}:{kube['runAsGroup']}"
    assert (single["uid"], single["fsGid"]) == (kube["runAsUser"], kube["fsGroup"])


def test_api_image_runs_what_the_chart_runs() -> None:
    from tests.helm.conftest import CHART_DIR

    (cmd,) = [r for k, r in parse_dockerfile(IMAGES / "api" / "Dockerfile")[-1].instructions if k == "CMD"]
    deployment = (CHART_DIR / "templates" / "api" / "deployment.yaml").read_text()
    (command,) = re.findall(r"command: (\[.*\])", deployment)
    assert json.loads(cmd) == yaml.safe_load(command)


def test_session_image_copies_the_local_sandbox_lockdown() -> None:
    copies = [
        copy_sources(rest)
        for keyword, rest in parse_dockerfile(IMAGES / "singleuser" / "Dockerfile")[-1].instructions
        if keyword == "COPY"
    ]
    lockdown = {
        src: dest
        for sources, dest, _ in copies
        for src in sources
        if src.startswith("enclave_api/hub/lockdown")
    }
    # The same files at the same place of the runtime as scripts/build-runtime.sh puts them.
    assert lockdown == {
        f"enclave_api/hub/lockdown/{name}": f"/opt/enclave-runtime/etc/jupyter/{Path(name).parent}/".replace(
            "/./", "/"
        )
        for name in LOCKDOWN_FILES
    }
    build_runtime = (ROOT / "scripts" / "build-runtime.sh").read_text()
    assert 'config="$RUNTIME/etc/jupyter"' in build_runtime
    # No second copy of the lock-down anywhere in sandbox_images/.
    originals = {(LOCKDOWN / name).read_bytes() for name in LOCKDOWN_FILES}
    for path in IMAGES.rglob("*"):
        if path.is_file():
            assert path.name not in {Path(n).name for n in LOCKDOWN_FILES}, path
            assert path.read_bytes() not in originals, path


def test_requirements_are_pinned_and_locked() -> None:
    requirements = pins(IMAGES / "singleuser" / "requirements.txt")
    lock = pins(IMAGES / "singleuser" / "constraints.txt")
    assert {n: lock.get(n) for n in requirements} == requirements
    for name in ("jupyterhub", "jupyterlab", "ipykernel", "httpx", "polars", "pyarrow"):
        assert name in lock
    pins(IMAGES / "hub" / "requirements.txt")
    pins(IMAGES / "wheel-requirements.txt")


def test_session_stack_is_the_local_runtimes() -> None:
    requirements = pins(IMAGES / "singleuser" / "requirements.txt")
    runtime = runtime_packages()
    assert set(requirements) == set(runtime)
    differing = {n: (requirements[n], runtime[n]) for n in runtime if requirements[n] != runtime[n]}
    # Only JupyterHub differs: the session's must be the hub's, that of the chart's JupyterHub chart.
    assert set(differing) <= {"jupyterhub"}
    assert requirements["jupyterhub"] == Z2JH_JUPYTERHUB[chart_dependency_version()]


def test_hub_image_matches_the_chart_and_the_project() -> None:
    (final,) = [s for s in parse_dockerfile(IMAGES / "hub" / "Dockerfile") if s.name is None]
    assert final.image == f"quay.io/jupyterhub/k8s-hub:{chart_dependency_version()}"
    project = {
        canonicalize_name(name): version
        for name, version in (
            line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line
        )
    }
    hub = pins(IMAGES / "hub" / "requirements.txt")
    assert {n: project[n] for n in hub} == hub, "the hub runs the httpx the API is tested with"


def test_wheels_are_built_with_a_pinned_backend() -> None:
    backend = pins(IMAGES / "wheel-requirements.txt")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in map(Requirement, pyproject["build-system"]["requires"]):
        assert requirement.specifier.contains(backend[canonicalize_name(requirement.name)])
    for image in ("singleuser", "api", "hub"):
        text = (IMAGES / image / "Dockerfile").read_text()
        assert "pip install --no-cache-dir -r /tmp/wheel-requirements.txt" in text
        assert "--no-build-isolation" in text
