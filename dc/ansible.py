"""The one way bcpctl runs Ansible: :func:`run_playbook`, a facade over ansible-runner.

Everything ansible-runner's issue tracker warns about is decided here, once:

- a fresh private data directory per run, by absolute path (relative ones break inventory
  and project loading, ansible-runner#1216, #1038), with the project's ``playbooks/`` copied
  in (``project_dir=`` is buggy, #1218); reusing one would keep stale ``env/`` files (#203, #493);
- ``suppress_env_files=True`` and extra variables handed over in a 0600 file that is deleted
  after the run, so they reach neither ``env/`` (#809, #167) nor the process list;
- every ``ANSIBLE_*`` setting that matters set explicitly, with our own ``ansible.cfg``,
  so no stray configuration in the caller's environment changes a run (#398, #735, #1197);
- host outcomes taken from the final runner stats (a rescued task still emits
  ``runner_on_failed``, #726), events used only for progress and messages;
- old run directories rotated away ourselves (artifacts filled disks, #97).

Playbooks hand data back (health facts, for instance) through ``set_stats`` under the key
``bcp_report`` as ``{inventory_hostname: {...}}``; it arrives in :attr:`HostResult.data`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from dc.clock import utcnow
from dc.errors import N_, Message, ProblemFound, UsageError, library_reason
from dc.playbook_runs import HostResult, PlaybookResult, record_run
from dc.shipped import shipped_folder
from dc.state import open_state

REPORT_KEY = "bcp_report"
PLAYBOOKS_ENV = "BCPCTL_PLAYBOOKS"
KEEP_RUNS = 20

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_RUN_DIR = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9-]+-[0-9a-f]{8}$")


@dataclass(frozen=True)
class HostEvent:
    """A task finished on a host: what a live progress view shows."""

    host: str
    task: str
    #: ok, changed, failed, unreachable or skipped.
    status: str


def playbooks_dir() -> Path:
    """The shipped ``playbooks/`` (``$BCPCTL_PLAYBOOKS`` overrides it with a site's own copy)."""
    if override := os.environ.get(PLAYBOOKS_ENV):
        return Path(override).resolve()
    return shipped_folder("dc", "playbooks")


def available_playbooks() -> list[str]:
    return sorted(p.stem for p in playbooks_dir().glob("*.yml"))


def default_runs_dir() -> Path:
    """Run directories live beside the default control database, under the state directory."""
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return base / "bcpctl" / "ansible-runs"


def _playbook_file(name: str) -> str:
    stem = name.removesuffix(".yml")
    if not _NAME.match(stem) or stem not in available_playbooks():
        raise UsageError(
            N_("unknown playbook '{name}' (available: {available_playbooks})"),
            name=name,
            available_playbooks=", ".join(available_playbooks()) or Message(N_("none")),
        )
    return f"{stem}.yml"


def _envvars(pdd: Path) -> dict[str, str]:
    # ansible-runner starts `ansible-playbook` by name; it lives beside this interpreter in the venv.
    bindir = str(Path(sys.executable).parent)
    return {
        "PATH": os.pathsep.join([bindir, os.environ.get("PATH", os.defpath)]),
        "ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_ARGS": "-o ControlMaster=no -o ControlPersist=no",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCAL_TEMP": str(pdd / "tmp"),
        "ANSIBLE_PYTHON_INTERPRETER": "auto_silent",
        "ANSIBLE_NOCOLOR": "True",
    }


def _host_event(event: Mapping[str, Any]) -> HostEvent | None:
    data = event.get("event_data") or {}
    host = data.get("host")
    if not host:
        return None
    kind = event.get("event")
    if kind == "runner_on_ok":
        status = "changed" if (data.get("res") or {}).get("changed") else "ok"
    elif kind == "runner_on_failed":
        status = "ok" if data.get("ignore_errors") else "failed"
    elif kind == "runner_on_unreachable":
        status = "unreachable"
    elif kind == "runner_on_skipped":
        status = "skipped"
    else:
        return None
    return HostEvent(host=host, task=data.get("task") or "", status=status)


#: what ssh prints when strict host-key checking refuses a host (changed or unknown key)
_HOST_KEY_MARKERS = ("Host key verification failed", "REMOTE HOST IDENTIFICATION HAS CHANGED", "No ED25519 host key")
HOST_KEY_REFUSED = "Host key verification failed"


def _message(event: Mapping[str, Any]) -> str:
    """One line for the operator's table; ssh's multi-line host-key banner becomes a plain verdict."""
    data = event.get("event_data") or {}
    res = data.get("res") or {}
    text = res.get("msg") or res.get("stderr") or res.get("reason") or "failed"
    if isinstance(text, list):
        text = " ".join(str(t) for t in text)
    text = str(text)
    task = data.get("task") or "task"
    if any(marker in text for marker in _HOST_KEY_MARKERS):
        return f"{task}: {HOST_KEY_REFUSED} (the host's key is unknown or has changed; never accepted silently)"
    first = text.strip().splitlines()[0] if text.strip() else "failed"
    return f"{task}: {first}"[:500]


def host_results(
    stats: Mapping[str, Any] | None, messages: Mapping[str, str], report: Mapping[str, Any] | None = None
) -> list[HostResult]:
    """Per-host outcomes from the runner's final stats (pure; tested directly).

    ``report`` is the ``bcp_report`` the playbook set through ``set_stats``, keyed by host.
    """
    if not stats:
        return []
    report = report or {}
    counters = {key: stats.get(key) or {} for key in ("ok", "changed", "failures", "dark", "skipped", "rescued")}
    counters["ignored"] = stats.get("ignored") or {}
    names = set(stats.get("processed") or {})
    for table in counters.values():
        names.update(table)
    results = []
    for host in sorted(names):
        n = {key: int(table.get(host, 0)) for key, table in counters.items()}
        if n["dark"]:
            status = "unreachable"
        elif n["failures"]:
            status = "failed"
        elif n["changed"]:
            status = "changed"
        elif n["ok"]:
            status = "ok"
        else:
            status = "skipped"
        data = report.get(host)
        results.append(
            HostResult(
                host=host,
                status=status,
                ok=n["ok"],
                changed=n["changed"],
                failed=n["failures"],
                unreachable=n["dark"],
                skipped=n["skipped"],
                rescued=n["rescued"],
                ignored=n["ignored"],
                message=messages.get(host) if status in ("failed", "unreachable") else None,
                data=data if isinstance(data, dict) else {},
            )
        )
    return results


def host_key_refused(result: PlaybookResult) -> list[str]:
    """Hosts that were unreachable because ssh refused their host key (strict checking)."""
    return [h.host for h in result.hosts if h.status == "unreachable" and HOST_KEY_REFUSED in (h.message or "")]


def rotate_runs(runs_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` run directories (names start with a UTC timestamp)."""
    if not runs_dir.is_dir():
        return []
    runs = sorted(p for p in runs_dir.iterdir() if p.is_dir() and _RUN_DIR.match(p.name))
    doomed = runs[: max(0, len(runs) - keep)]
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def _new_run_dir(runs_dir: Path, stem: str) -> tuple[str, Path]:
    run_id = f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{stem}-{uuid.uuid4().hex[:8]}"
    pdd = (runs_dir / run_id).resolve()
    pdd.mkdir(parents=True, mode=0o700)
    shutil.copytree(playbooks_dir(), pdd / "project", ignore=shutil.ignore_patterns("__pycache__"))
    (pdd / "tmp").mkdir(mode=0o700)
    return run_id, pdd


def _check_extravars(extravars: Mapping[str, Any]) -> None:
    for key in extravars:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise UsageError(N_("invalid extra variable name '{key}'"), key=key)


def _write_extravars(pdd: Path, extravars: Mapping[str, Any]) -> Path:
    path = pdd / "extravars.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(dict(extravars), f, ensure_ascii=False)
    return path


def run_playbook(
    name: str,
    *,
    inventory: Mapping[str, Any],
    limit: str | None = None,
    check: bool = False,
    extravars: Mapping[str, Any] | None = None,
    state: Engine | None = None,
    runs_dir: Path | None = None,
    keep_runs: int = KEEP_RUNS,
    timeout: int | None = None,
    on_event: Callable[[HostEvent], None] | None = None,
) -> PlaybookResult:
    """Run ``playbooks/<name>.yml`` against ``inventory`` and return per-host results.

    ``inventory`` is the dict from :func:`dc.inventory.build_inventory`; ``limit`` an Ansible
    host pattern; ``check`` runs in ``--check --diff`` mode, changing nothing. The result is
    recorded in the control database (``state``, default: the configured one). Never put a
    secret in ``extravars`` for a playbook that prints it; they are not stored anywhere else.
    """
    import ansible_runner
    from ansible_runner.exceptions import AnsibleRunnerException, ConfigurationError

    playbook = _playbook_file(name)
    extravars = dict(extravars or {})
    _check_extravars(extravars)
    runs_dir = (runs_dir or default_runs_dir()).resolve()
    run_id, pdd = _new_run_dir(runs_dir, playbook.removesuffix(".yml"))
    extravars_file = _write_extravars(pdd, extravars) if extravars else None
    messages: dict[str, str] = {}
    report: dict[str, Any] = {}

    def handle(event: dict[str, Any]) -> bool:
        if event.get("event") == "playbook_on_stats":
            # runner.stats leaves out set_stats data; the stats event carries it.
            custom = (event.get("event_data") or {}).get("artifact_data") or {}
            if isinstance(custom.get(REPORT_KEY), dict):
                report.update(custom[REPORT_KEY])
        progress = _host_event(event)
        if progress and progress.status in ("failed", "unreachable") and progress.host not in messages:
            messages[progress.host] = _message(event)
        if progress and on_event is not None:
            on_event(progress)
        return True  # keep the event: without it runner.stats stays empty (ansible-runner PR #463)

    started, clock = utcnow(), time.monotonic()
    try:
        runner = ansible_runner.run(
            private_data_dir=str(pdd),
            playbook=playbook,
            inventory=dict(inventory),
            limit=limit,
            extravars=str(extravars_file) if extravars_file else None,
            cmdline="--check --diff" if check else None,
            envvars=_envvars(pdd),
            suppress_env_files=True,
            quiet=True,
            ident="artifacts",
            event_handler=handle,
            timeout=timeout,
        )
    except (AnsibleRunnerException, ConfigurationError, OSError) as exc:
        # e.g. ansible-playbook missing from the venv: nothing ran on any host
        raise ProblemFound(
            N_("cannot start ansible-playbook for {playbook}: {exc}"), playbook=playbook, exc=library_reason(exc)
        ) from None
    finally:
        if extravars_file is not None:
            extravars_file.unlink(missing_ok=True)
    hosts = host_results(runner.stats, messages, report)
    error = None
    if not hosts:
        error = _no_hosts_reason(runner, limit)
    result = PlaybookResult(
        run_id=run_id,
        playbook=playbook.removesuffix(".yml"),
        check=check,
        limit=limit,
        status=runner.status,
        rc=runner.rc,
        started_at=started,
        finished_at=utcnow(),
        seconds=round(time.monotonic() - clock, 3),
        hosts=hosts,
        artifact_dir=str(pdd / "artifacts" / "artifacts"),
        extravar_names=sorted(extravars),
        error=error,
    )
    record_run(state if state is not None else open_state(), result)
    rotate_runs(runs_dir, keep_runs)
    return result


def _no_hosts_reason(runner: Any, limit: str | None) -> str:
    """Why a run touched no host: a syntax error, a timeout, or a pattern that matched nothing."""
    if runner.status == "timeout":
        return "the run timed out before any host finished"
    try:
        lines = [line.strip() for line in runner.stdout.read().splitlines() if line.strip()]
    except (OSError, ValueError, AttributeError):
        lines = []
    errors = [line for line in lines if line.startswith(("ERROR", "[ERROR]"))]
    if errors:
        return errors[0][:500]
    if limit:
        return f"no host matched --limit {limit}"
    return "no host matched the playbook's hosts"
