"""CPU time and memory of a process and a description of the machine, from /proc (Linux only)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Final, TypeVar

__all__ = [
    "ProcessGone",
    "cpu_sample",
    "cpu_seconds",
    "machine",
    "rss_kb",
    "rss_sample",
    "udp_drops",
]

_T = TypeVar("_T")
_CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
#: /proc/PID/stat fields after the command name: state is field 3; utime, stime are 14, 15.
_UTIME_AFTER_COMM: Final = 11


class ProcessGone(Exception):
    """The process has no /proc entry any more (it exited)."""


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds the process ``pid`` has used so far.

    Raises:
        ProcessGone: there is no such process.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ProcessGone(f"process {pid} has no /proc/{pid}/stat") from None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[_UTIME_AFTER_COMM]), int(fields[_UTIME_AFTER_COMM + 1])
    return (utime + stime) / _CLOCK_TICKS


def rss_kb(pid: int) -> int:
    """The resident set size of ``pid`` in kB: ``VmRSS`` of /proc/PID/status.

    Raises:
        ProcessGone: there is no such process, or it has no memory any more (a zombie).
    """
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:
        raise ProcessGone(f"process {pid} has no /proc/{pid}/status") from None
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            # "VmRSS:     12345 kB"
            return int(line.split()[1])
    raise ProcessGone(f"process {pid} has no VmRSS (it exited)")


def rss_sample(pids: Mapping[str, int]) -> dict[str, int | None]:
    """``rss_kb`` of each named process; None for one that is gone."""
    return _sample(pids, rss_kb)


def cpu_sample(pids: Mapping[str, int]) -> dict[str, float | None]:
    """``cpu_seconds`` of each named process; None for one that is gone."""
    return _sample(pids, cpu_seconds)


def _sample(pids: Mapping[str, int], read: Callable[[int], _T]) -> dict[str, _T | None]:
    sample: dict[str, _T | None] = {}
    for name, pid in pids.items():
        try:
            sample[name] = read(pid)
        except ProcessGone:
            sample[name] = None
    return sample


def machine() -> dict[str, object]:
    """CPU model and counts, from /proc/cpuinfo and the scheduler's affinity."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "cores_online": os.cpu_count() or 0,
        "cores_usable": len(os.sched_getaffinity(0)),
    }


def _socket_inodes(pid: int) -> set[str]:
    inodes: set[str] = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for entry in entries:
        try:
            target = os.readlink(entry)
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def udp_drops(pid: int) -> int:
    """Datagrams the kernel dropped so far on the open UDP sockets of ``pid`` (full buffers).

    The ``drops`` column of /proc/net/udp and /proc/net/udp6, summed over the sockets whose
    inode is one of the process's file descriptors. Sockets already closed are not counted.
    """
    inodes = _socket_inodes(pid)
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if len(fields) >= 13 and fields[9] in inodes:
                total += int(fields[12])
    return total
