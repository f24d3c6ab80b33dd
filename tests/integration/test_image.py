"""The image as an init job, run for real with rootful podman against test-bed servers of every
line, for each platform (arm64 under qemu): started before the server, by host name, as the
image's user and as an arbitrary UID, read-only root without /tmp, SIGTERM while waiting, and the
README's Kubernetes example through `podman kube play`. Nothing here is skipped: a machine that
cannot build or run the images fails these tests."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from db import names
from images import ARCHES, ROOT, loaded, podman, podman_command, podman_env
from netutil import free_port
from tool import Result, check

ALL = {"compute_pk", "kafka_topic", "compute_tags", "queue_interval", "compute_buffering_since"}
SECRET = "/run/secrets/neo4j/password"
arches = pytest.mark.parametrize("arch", ARCHES)


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[Any]:
    """Writes a server's password into a file to mount as the secret (mode 0444, as a
    Kubernetes secret volume has it); returns the podman -v argument."""
    def mount(password: str) -> str:
        folder = tmp_path / "secret"
        folder.mkdir(exist_ok=True)
        (folder / "password").write_text(password)
        (folder / "password").chmod(0o444)
        folder.chmod(0o755)
        return f"{folder}:{Path(SECRET).parent}:ro"
    yield mount


@pytest.fixture
def container_name() -> Iterator[str]:
    """A unique container name; the container is removed whatever the test did."""
    name = f"nsr-test-{uuid.uuid4().hex[:12]}"
    yield name
    podman("rm", "--force", "--ignore", name)


def run_args(name: str, arch: str, *options: str) -> list[str]:
    return ["run", "--rm", "--pull", "never", "--network", "host", "--name", name, *options,
            loaded(arch)]


def connection(uri: str, secret_mount: str) -> list[str]:
    return ["--env", f"NEO4J_URI={uri}", "--env", "NEO4J_USERNAME=neo4j",
            "--env", f"NEO4J_PASSWORD_FILE={SECRET}", "--volume", secret_mount]


def spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(podman_command(*args), env=podman_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def until_event(proc: subprocess.Popen[str], event: str) -> list[str]:
    """stdout lines up to and including the first `event` event (the run is then waiting)."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if json.loads(line)["event"] == event:
            return seen
    raise AssertionError(f"the run ended before a {event} event: {''.join(seen)}"
                         f"{proc.stderr.read() if proc.stderr else ''}")


def finish(proc: subprocess.Popen[str], seen: list[str], args: tuple[str, ...],
           secrets: tuple[str, ...], timeout: float = 300) -> Result:
    out, err = proc.communicate(timeout=timeout)
    return check(Result(proc.returncode, "".join(seen) + out, err), args, secrets)


def run(args: list[str], tool_args: tuple[str, ...], secrets: tuple[str, ...] = ()) -> Result:
    proc = podman(*args, *tool_args, timeout=300)
    return check(Result(proc.returncode, proc.stdout, proc.stderr), tool_args, secrets)


@arches
def test_init_job_started_before_the_server(arch: str, clean_fault_server: Any, secret: Any,
                                            container_name: str) -> None:
    """`apply --wait 120` in a read-only container with a tmpfs /tmp and the password in a
    mounted secret file, started while the server is down; the test bed then starts the server:
    exit 0, the whole table applied, every stdout line a valid event, the password nowhere."""
    server = clean_fault_server
    password = server.password
    server.kill()
    tool_args = ("apply", "--wait", "120", "--log-format", "json")
    proc = spawn([*run_args(container_name, arch, "--read-only", "--tmpfs", "/tmp",
                            *connection(server.uri, secret(password))), *tool_args])
    try:
        seen = until_event(proc, "wait")
        server.restart()
        r = finish(proc, seen, tool_args, (password,))
    finally:
        if proc.poll() is None:
            proc.kill()
    assert r.code == 0, r.stdout + r.stderr
    assert len(r.of("wait")) >= 1
    assert r.end["outcome"] == "success"
    assert names(server.server) == ALL


@arches
@pytest.mark.parametrize("user", ["image", "1000770000:0"])
def test_by_host_name_as_the_image_user_and_an_arbitrary_uid(
        arch: str, user: str, clean_neo4j: Any, secret: Any, container_name: str) -> None:
    """By host name (--add-host), read-only with a tmpfs /tmp: as the image's own user and as a
    UID with no passwd entry and group 0 (how OpenShift runs containers), apply succeeds."""
    uri = f"bolt://neo4j-db.test:{clean_neo4j.port}"
    options = ["--add-host", "neo4j-db.test:127.0.0.1", "--read-only", "--tmpfs", "/tmp"]
    if user != "image":
        options += ["--user", user]
    tool_args = ("apply", "--log-format", "json")
    r = run([*run_args(container_name, arch, *options,
                       *connection(uri, secret(clean_neo4j.password)))], tool_args,
            (clean_neo4j.password,))
    assert r.code == 0, r.stdout + r.stderr
    assert r.end["outcome"] == "success"
    assert names(clean_neo4j) == ALL
    whoami = podman(*run_args(container_name + "-id", arch, *options[2:]), "--version")
    assert whoami.returncode == 0, whoami.stderr


@arches
def test_read_only_root_without_tmp_fails_at_once_with_the_bootloaders_message(
        arch: str, container_name: str) -> None:
    """With a read-only root and no writable /tmp the one-file bootloader has nowhere to
    unpack: one line naming each directory it tried (/tmp first), exit 73 at once, even with
    --wait (docs/image.md)."""
    proc = podman(*run_args(container_name, arch, "--read-only", "--read-only-tmpfs=false"),
                  "apply", "--wait", "120", "--uri", f"bolt://127.0.0.1:{free_port()}",
                  timeout=60)
    assert (proc.returncode, proc.stdout) == (73, ""), proc.stderr
    assert proc.stderr.startswith(
        "neo4j-schema-rollback: error: no directory to unpack into (/tmp (TMPDIR unset): not "
        "writable, XDG_RUNTIME_DIR: not set, the binary's directory /usr/local/bin: owned by "
        "another user and not sticky, HOME/.cache "), proc.stderr
    assert proc.stderr.endswith("(exit 73)\n") and proc.stderr.count("\n") == 1, proc.stderr


@arches
def test_sigterm_while_waiting_ends_with_143_and_run_end(arch: str, container_name: str) -> None:
    """`podman stop` (SIGTERM to the container) while `--wait` retries: exit 143 and run.end."""
    tool_args = ("status", "--wait", "120", "--uri", f"bolt://127.0.0.1:{free_port()}",
                 "--log-format", "json")
    proc = spawn([*run_args(container_name, arch, "--read-only", "--tmpfs", "/tmp",
                            "--env", "NEO4J_PASSWORD=not-used"), *tool_args])
    try:
        seen = until_event(proc, "wait")
        stop = podman("stop", "--time", "60", container_name, timeout=120)
        assert stop.returncode == 0, stop.stderr
        r = finish(proc, seen, tool_args, ("not-used",), timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert r.code == 143, r.stdout + r.stderr
    assert r.events[-1]["event"] == "run.end"
    assert r.end["outcome"] == "interrupted"
    assert r.end["exit_code"] == 143


def readme_example() -> str:
    """The YAML of the README's Kubernetes example."""
    text = (ROOT / "README.md").read_text()
    match = re.search(r"### Kubernetes init container\n.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert match, "README.md has no Kubernetes init container example"
    return match.group(1)


def for_the_test_bed(example: str, image: str, uri: str, secret_dir: Path) -> str:
    """The README example with only what differs here replaced: the image (the archive loaded
    into podman), the URI of the test-bed server, the host network (the server listens on the
    host's loopback), the application container (here the same image printing its statements:
    it starts only once the init container has succeeded), and the secret volume, which becomes
    a hostPath folder holding the same file (`password`): podman 4.3's kube play dereferences a
    nil secrets manager on secret volumes (fixed in later podman)."""
    secret, pod = yaml.safe_load_all(example)
    assert secret["kind"] == "Secret" and pod["kind"] == "Pod"
    [init] = pod["spec"]["initContainers"]
    init["image"] = image
    [uri_var] = [e for e in init["env"] if e["name"] == "NEO4J_URI"]
    uri_var["value"] = uri
    pod["spec"]["hostNetwork"] = True
    [app] = pod["spec"]["containers"]
    app.clear()
    app.update({"name": "app", "image": image, "args": ["statements"],
                "securityContext": {"readOnlyRootFilesystem": True},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]})
    [volume] = [v for v in pod["spec"]["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    [item] = volume["secret"]["items"]
    for key, value in secret["stringData"].items():
        (secret_dir / (item["path"] if key == item["key"] else key)).write_text(value)
    del volume["secret"]
    volume["hostPath"] = {"path": str(secret_dir), "type": "Directory"}
    return yaml.safe_dump(pod, sort_keys=False)


@arches
def test_the_readme_kubernetes_example_with_podman_kube_play(arch: str, clean_neo4j: Any,
                                                             tmp_path: Path) -> None:
    """The README's Pod, played by `podman kube play`: its init container applies the table on
    the test-bed server from a read-only root with the emptyDir at /tmp and the password from
    the secret volume; then the application container runs."""
    example = readme_example()
    assert "readOnlyRootFilesystem: true" in example and "emptyDir" in example
    uri = re.sub(r"^bolt://", "neo4j://", clean_neo4j.uri)
    manifest = tmp_path / "pod.yaml"
    secret_dir = tmp_path / "secret"
    secret_dir.mkdir()
    manifest.write_text(for_the_test_bed(example, loaded(arch), uri, secret_dir))
    [password_file] = list(secret_dir.iterdir())
    password_file.write_text(clean_neo4j.password)
    password_file.chmod(0o444)
    pod_name = list(yaml.safe_load_all(example))[1]["metadata"]["name"]
    podman("kube", "down", str(manifest))
    try:
        played = podman("kube", "play", "--start", str(manifest), timeout=600)
        assert played.returncode == 0, played.stdout + played.stderr
        waited = podman("wait", f"{pod_name}-app", timeout=300)
        assert waited.stdout.strip() == "0", waited.stdout + waited.stderr
        logs = podman("logs", f"{pod_name}-app")
        assert logs.stdout.startswith("CREATE CONSTRAINT compute_pk IF NOT EXISTS"), logs.stdout
        assert names(clean_neo4j) == ALL
        assert clean_neo4j.password not in played.stdout + played.stderr + logs.stdout
    finally:
        down = podman("kube", "down", str(manifest))
        assert down.returncode == 0, down.stderr


@arches
def test_the_termination_message_of_a_failed_init_job(arch: str, container_name: str,
                                                      tmp_path: Path) -> None:
    """Read-only, as the image's user, with a file mounted at /dev/termination-log as the
    kubelet mounts it and nothing listening: exit 3, and the file podman mounted holds the
    summary `kubectl describe` would show (outcome, exit code, counts, the first error, the
    run id), within 4096 bytes."""
    log = tmp_path / "termination-log"
    log.write_text("")
    log.chmod(0o666)  # the image's user (65532) writes it, as the kubelet's file allows
    tool_args = ("apply", "--uri", f"bolt://127.0.0.1:{free_port()}", "--log-format", "json")
    r = run([*run_args(container_name, arch, "--read-only", "--tmpfs", "/tmp",
                       "--env", "NEO4J_PASSWORD=not-used",
                       "--volume", f"{log}:/dev/termination-log")], tool_args, ("not-used",))
    assert r.code == 3, r.stdout + r.stderr
    [error] = r.of("error")
    counts = ", ".join(f"{name} {value}" for name, value in r.end["counts"].items())
    message = log.read_bytes()
    assert len(message) <= 4096
    assert message.decode() == (
        "neo4j-schema-rollback apply: connection_error (exit code 3)\n"
        f"statements: {counts}\n"
        f"first error: {error['message']} [{error['error_class']}]\n"
        f"run id: {r.events[0]['run_id']}\n")
