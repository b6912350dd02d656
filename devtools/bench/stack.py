"""The studio's real processes for the bench, each in its own process group with its
output in a log file, and what they use of the machine: CPU time and memory, read from
/proc."""

import os
import threading
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def descendants(pid):
    """The pids of `pid`'s whole process tree, itself included."""
    children = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    # The command name may hold spaces and parentheses: ppid follows the last ")".
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def cpu_seconds(pids):
    """{pid: user plus system CPU seconds used so far (all its threads)}."""
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (stat(5))
    return used


class Sampler:
    """Calls `_loop` in a daemon thread between start() and stop()."""

    def __init__(self, interval, name):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class CpuMeter(Sampler):
    """CPU used by groups of processes between two readings. It samples every 0.25 s, so
    a process that ends in between (a database connection past its CONN_MAX_AGE) still
    counts, up to its last sample; one that starts in between counts from zero."""

    def __init__(self, interval=0.25):
        super().__init__(interval, "bench-cpu")
        self.groups = {}  # name -> callable returning the group's pids
        self.seen = {}  # name -> {pid: CPU seconds at its last sample}
        self._lock = threading.Lock()

    def add(self, name, pids):
        with self._lock:
            self.groups[name] = pids
            self.seen[name] = {}

    def reading(self):
        self._sample()
        with self._lock:
            return {name: dict(seen) for name, seen in self.seen.items()}

    @staticmethod
    def between(before, after):
        """{group: CPU seconds used between two readings}."""
        return {name: sum(seconds - before.get(name, {}).get(pid, 0.0) for pid, seconds in seen.items())
                for name, seen in after.items()}

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self):
        with self._lock:
            for name, pids in self.groups.items():
                self.seen[name].update(cpu_seconds(pids()))


def database_backends(name):
    """The pids of PostgreSQL's backends connected to database `name`, found by their
    process titles ("postgres: [CLUSTER: ]USER DATABASE HOST(PORT) STATE")."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                    title = cmdline.read().decode(errors="replace").split()
            except OSError:
                continue
            if title[:1] == ["postgres:"] and title[1].endswith(":"):
                title = title[:1] + title[2:]  # without the cluster's name
            if len(title) > 3 and title[0] == "postgres:" and title[2] == name:
                pids.append(int(entry.name))
    return pids


def status_kb(pid, field):
    """A field of /proc/<pid>/status in kB (VmRSS now, VmHWM the peak); 0 once gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages divided among the processes sharing them, so
    a process tree's sum counts the pages forked workers share with their parent once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemorySampler(Sampler):
    """Samples process trees in a thread: the peak of each tree's summed RSS and PSS.
    Per-process peaks need no sampling: the kernel keeps them (VmHWM)."""

    def __init__(self, interval=0.25):
        super().__init__(interval, "bench-memory")
        self.trees = {}  # name -> root pid
        self.peaks = {}  # name -> {"rss_kb", "pss_kb", "processes"}

    def watch(self, name, pid):
        self.trees[name] = pid
        self.peaks.setdefault(name, {"rss_kb": 0, "pss_kb": 0, "processes": 0})

    def _loop(self):
        while not self._stop.wait(self.interval):
            for name, pid in list(self.trees.items()):
                self.sample(name, pid)

    def sample(self, name, pid):
        pids = descendants(pid)
        peak = self.peaks[name]
        peak["rss_kb"] = max(peak["rss_kb"], sum(status_kb(p, "VmRSS") for p in pids))
        peak["pss_kb"] = max(peak["pss_kb"], sum(pss_kb(p) for p in pids))
        peak["processes"] = max(peak["processes"], len(pids))
