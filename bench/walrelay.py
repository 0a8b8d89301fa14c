"""The loopback relay that runs both tools' WAL commands for a PostgreSQL server (bench/wal.py).

PostgreSQL runs as ``postgres`` (initdb refuses root) while this Python is root's, so the
server's ``archive_command`` and ``restore_command`` are a bash script that hands its arguments
over loopback to the relay in this process, which runs the tool as root in the server's
directory and answers with its exit status (the arrangement of ``tests/backup/walsite.py``).
The script's own cost (bash, a TCP connection) is the same whichever tool it relays to.
"""

from __future__ import annotations

import os
import pwd
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM = "bench-juki"
WAL_FILE_NAME_LENGTH = 24


@dataclass
class Timing:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


@dataclass
class Relay:
    """Runs each tool's WAL command for the server as root and keeps its wall and CPU time per segment.

    ``push`` runs both tools on the segment, one after the other (the restore comparison needs
    both archives of the very same WAL); ``push-bcpctl`` and ``push-pgbackrest`` run one.
    """

    env: dict[str, str]
    pgbackrest: list[str]
    owner: str | None
    #: how bcpctl's archive_command is configured
    push_options: list[str]
    #: pgBackRest's archive-get options in its restore_command (its asynchronous queue)
    get_options: list[str] = field(default_factory=list)
    #: pgBackRest's archive-push options in its archive_command (``archive-async`` beside bcpctl's push-daemon)
    pgbr_push_options: list[str] = field(default_factory=list)
    server: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    pushes: dict[str, Timing] = field(default_factory=lambda: {"bcpctl": Timing(), "pgbackrest": Timing()})
    failures: list[str] = field(default_factory=list)
    #: bcpctl restore's restore_command calls: (file, exit code, seconds)
    gets: list[tuple[str, int, float]] = field(default_factory=list)
    #: the pgBackRest restore's restore_command calls, the same way
    pgbackrest_gets: list[tuple[str, int, float]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.getsockname()[1])

    def serve(self) -> None:
        from tests.servers.ports import serve_each

        serve_each(self.server, self._one)

    def _run(self, argv: list[str], cwd: str) -> tuple[int, float, float]:
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
        if proc.returncode != 0:
            # pgBackRest ends an error with a HINT line; the ERROR line above it says what failed
            lines = err.splitlines()
            said = next((line for line in lines if "ERROR" in line), lines[-1] if lines else proc.returncode)
            self.failures.append(f"{argv[0:4]}: {said}")
        return proc.returncode, time.monotonic() - started, usage.ru_utime + usage.ru_stime

    def _one(self, conn: socket.socket) -> None:
        with conn:
            line = conn.makefile("rb").readline().decode().rstrip("\n")
            tool, cwd, *args = line.split("\t")
            try:
                code = self.handle(tool, cwd, args)
            except Exception as exc:  # the server must see a failure, and the run must say why
                self.failures.append(f"relay {tool} {args}: {exc!r}")
                code = 97
            conn.sendall(f"{code}\n".encode())

    def _push_argv(self, tool: str, cwd: str, path: str) -> list[str]:
        if tool == "bcpctl":
            return [sys.executable, "-m", "bcpctl.cli", "wal", "push", path, "--system", SYSTEM, *self.push_options]
        return [*self.pgbackrest, *self.pgbr_push_options, "archive-push", str(Path(cwd) / path)]

    def handle(self, tool: str, cwd: str, args: list[str]) -> int:
        if tool in ("push", "push-bcpctl", "push-pgbackrest"):  # archive_command
            path = args[0]
            segment = len(Path(path).name) == WAL_FILE_NAME_LENGTH
            for name in ("bcpctl", "pgbackrest") if tool == "push" else (tool.removeprefix("push-"),):
                code, wall, cpu = self._run(self._push_argv(name, cwd, path), cwd)
                if code != 0:
                    return 1
                if segment:
                    self.pushes[name].wall.append(wall)
                    self.pushes[name].cpu.append(cpu)
            return 0
        if tool == "bcpctl":  # bcpctl restore's restore_command: "<relay> bcpctl get %f %p --system …"
            code, wall, _ = self._run([sys.executable, "-m", "bcpctl.cli", "wal", *args], cwd)
            self.gets.append((args[1], code, wall))
            target = Path(cwd) / args[2]
        elif tool == "pgbackrest-get":
            target = Path(cwd) / args[1]
            code, wall, _ = self._run([*self.pgbackrest, *self.get_options, "archive-get", args[0], str(target)], cwd)
            self.pgbackrest_gets.append((args[0], code, round(wall, 2)))
        else:
            return 2
        if code == 0 and self.owner and target.exists():
            pw = pwd.getpwnam(self.owner)
            os.chown(target, pw.pw_uid, pw.pw_gid)
        return code

    def close(self) -> None:
        self.server.close()


def relay_script(path: Path, port: int) -> Path:
    """``<script> TOOL ARGS…``: TOOL, the server's directory and ARGS to the relay; its answer is the exit code."""
    path.write_text(
        "#!/bin/bash\n"
        # PostgreSQL reads a failed restore_command as "no such file": a connection the relay never
        # saw must be retried and say so in the server's log, not pass for a missing segment
        f"n=0; until {{ exec 3<>/dev/tcp/127.0.0.1/{port}; }} 2>/dev/null; do\n"
        f'  n=$((n + 1)); [ "$n" -ge 50 ] && {{ echo "bench relay: cannot connect to port {port}" >&2; exit 99; }}\n'
        "  sleep 0.1\n"
        "done\n"
        'tool="$1"; shift\n'
        "IFS=$'\\t'\n"
        'printf "%s\\t%s\\t%s\\n" "$tool" "$PWD" "$*" >&3\n'
        'read -r code <&3 || { echo "bench relay: no answer for $tool $*" >&2; exit 98; }\n'
        'exit "$code"\n'
    )
    path.chmod(0o755)
    return path
