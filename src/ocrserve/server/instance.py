"""A server on this machine as the CLI sees it: the command that starts one, its pid file and
the record beside it, and its keys.

Each server has its own pid file (`Settings.pid_path`: derived from the inference address unless
``pid_file`` is set), holding just the pid as tools expect, and beside it ``PIDFILE.json``, the
record of where the server runs and where its key file is. ``ocrserve stop`` and ``ocrserve
key`` find the server from the same settings that started it. Standard library only.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from ocrserve.errors import ConfigError
from ocrserve.settings import Settings

__all__ = [
    "ServerRecord",
    "find_key_file",
    "read_key",
    "read_pid",
    "server_command",
]

# ``python -m ocrserve`` (and ``python -c``) put the working directory first on sys.path, so a
# folder named ``ocrserve`` there (a clone's parent) would be imported instead of the package.
# The child drops that entry (unless -P / PYTHONSAFEPATH already did); PYTHONPATH still works.
_ENTRY = (
    "import sys; sys.flags.safe_path or sys.path.pop(0); "
    "from ocrserve.cli import main; sys.exit(main())"
)


def server_command(*args: str) -> list[str]:
    """The command line that runs ``ocrserve ARGS`` in a child process with this interpreter."""
    return [sys.executable, "-c", _ENTRY, *args]


def read_pid(path: str | os.PathLike[str]) -> int | None:
    """The live ocrserve process named by the pid file, or None (missing, stale, garbage)."""
    try:
        pid = int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    try:  # a stale file whose pid now belongs to another program does not count
        if b"ocrserve" not in Path(f"/proc/{pid}/cmdline").read_bytes():
            return None
    except OSError:
        pass
    return pid


@dataclass(frozen=True)
class ServerRecord:
    """What a running server says about itself, next to its pid file."""

    pid: int
    cwd: str
    inference_address: str
    management_address: str
    #: Absolute path of its key file; None when token authorization is off.
    key_file: str | None

    @staticmethod
    def path_for(pid_file: str | os.PathLike[str]) -> Path:
        return Path(f"{pid_file}.json")

    @classmethod
    def of_this_process(cls, settings: Settings) -> ServerRecord:
        key_file = None
        if not settings.disable_token_authorization:
            key_file = str(settings.key_path().resolve())
        return cls(os.getpid(), str(Path.cwd()), settings.inference_address,
                   settings.management_address, key_file)  # fmt: skip

    def write(self, pid_file: Path) -> None:
        """Write the pid file and the record beside it."""
        pid_file.parent.mkdir(parents=True, exist_ok=True)
        pid_file.write_text(str(self.pid))
        self.path_for(pid_file).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def read(cls, pid_file: Path) -> ServerRecord | None:
        """The record of the live server named by ``pid_file``, or None."""
        pid = read_pid(pid_file)
        if pid is None:
            return None
        try:
            doc = json.loads(cls.path_for(pid_file).read_text())
            record = cls(**doc)
        except (OSError, ValueError, TypeError):
            return None
        return record if record.pid == pid else None

    @staticmethod
    def remove(pid_file: Path) -> None:
        pid_file.unlink(missing_ok=True)
        ServerRecord.path_for(pid_file).unlink(missing_ok=True)


def find_key_file(settings: Settings, explicit: str | None = None) -> Path:
    """The key file of the server ``settings`` name: ``explicit``, else the one its record
    names, else ``key_file`` (default ``./key_file.json``) from here."""
    if explicit:
        return Path(explicit)
    record = ServerRecord.read(settings.pid_path())
    if record is not None:
        if record.key_file is None:
            raise ConfigError(
                f"the server at {record.inference_address} (pid {record.pid}) runs without "
                "token authorization: it needs no key"
            )
        return Path(record.key_file)
    return settings.key_path()


def read_key(path: Path, kind: str, management_address: str, now: float | None = None) -> str:
    """The current ``kind`` key in the key file; `ConfigError` saying how to get one when the
    file is missing or the key has expired."""
    try:
        entry = json.loads(path.read_text())[kind]
        key = entry["key"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"no {kind} key in it"
        raise ConfigError(
            f"cannot read {path} ({reason}); is the server running with token "
            "authorization on? Name it with --inference-address/--ts-config/--pid-file as it "
            "was started, or --key-file FILE"
        ) from None
    expires = entry.get("expiration time")
    if expires:
        stamp = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
        moment = datetime.now(timezone.utc).timestamp() if now is None else now
        if stamp.timestamp() <= moment:
            raise ConfigError(
                f"the {kind} key in {path} expired at {expires}; get a new one with "
                f'curl -H "Authorization: Bearer $(ocrserve key --type API)" '
                f'"{management_address.rstrip("/")}/token?type={kind}", then run ocrserve key '
                "again (or restart the server; token_expiration_min sets how long keys live)"
            )
    return str(key)
