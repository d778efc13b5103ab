"""flamethread sandbox init: PID 1 of every sandbox run.

It runs as the container's root with four capabilities (SYS_PTRACE, SETUID, SETGID, KILL) and
no others; the script runs as another user with none. It starts the script held (the site hook waits
on a pipe), attaches py-spy to it, lets it go once the profiler samples, and waits for it under
the wall clock. The script's output goes to pipes only this process reads, so the one thing on the
container's stdout is this process's report, one JSON object, which the script cannot reach: this
process is not dumpable and belongs to another user, so /proc/1/fd is closed to the script.

Written in Python because the image's python3 is the only runtime every sandbox image has; the
runner (services/sandbox-runner/src/outcome.rs) reads the report.
"""

import ctypes
import json
import os
import resource
import select
import signal
import subprocess
import sys
import threading
import time

PR_SET_DUMPABLE = 4
LINUX_CAPABILITY_VERSION_3 = 0x20080522
LIBC = ctypes.CDLL(None, use_errno=True)


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_capabilities():
    """In the script's process before exec: no capabilities at all, whatever its user (under
    gVisor it keeps root's uid, which the profiler needs; no-new-privileges keeps exec from
    giving them back)."""
    header, data = CapHeader(LINUX_CAPABILITY_VERSION_3, 0), (CapData * 2)()
    if LIBC.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")



class Tail(threading.Thread):
    """Reads a pipe to its end, keeping the last `keep` bytes (the first, with `head`) and
    counting them all."""

    def __init__(self, fd, keep, head=False):
        super().__init__(daemon=True)
        self.fd, self.keep, self.head, self.total, self.data = fd, keep, head, 0, bytearray()

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.total += len(chunk)
            if self.head:
                self.data += chunk[: max(0, self.keep - len(self.data))]
                continue
            self.data += chunk
            if len(self.data) > 2 * self.keep:
                del self.data[: len(self.data) - self.keep]
        os.close(self.fd)

    def truncated(self):
        return self.total > self.keep

    def text(self):
        if self.head:
            return bytes(self.data[: self.keep]).decode("utf-8", "replace")
        data = bytes(self.data[-self.keep :]) if self.keep else b""
        # Never half a character at the cut.
        while self.truncated() and data and data[0] & 0xC0 == 0x80:
            data = data[1:]
        return data.decode("utf-8", "replace")

    def report(self, name):
        return {name: self.text(), "bytes": self.total, "truncated": self.truncated()}


class NoProfiler:
    """The profiler that could not start: already ended, with its failure as its status."""

    pid, returncode = -1, 127

    def __init__(self, err):
        self.err = err

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        return self.returncode

    def send_signal(self, _signal):
        pass

    def kill(self):
        pass


def kill_everyone_else():
    """SIGKILLs every other process in the run's PID namespace (PID 1 is never signalled by
    kill(-1)); the init holds CAP_KILL for this, the script's processes run as another user."""
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


def stop_profiler(spy, children, grace):
    """Lets py-spy write what it has (it does on SIGINT) within `grace` seconds, else kills it."""
    if spy.pid < 0:
        return
    try:
        spy.send_signal(signal.SIGINT)
        if children.wait_for(spy.pid, grace) is None:
            spy.kill()
            children.wait_for(spy.pid, 5)
    except OSError:
        pass


def oom_killed():
    """Whether the kernel's OOM killer took a process of this container (the cgroup's counter:
    the engine's own OOMKilled flag is racy when the killed process is not the container's
    first)."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as events:
                for line in events:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
            return False
        except (OSError, ValueError):
            continue
    return None


def pids_exhausted():
    """Whether a fork was refused at the container's process limit (the cgroup's counter)."""
    for path in ("/sys/fs/cgroup/pids.events", "/sys/fs/cgroup/pids/pids.events"):
        try:
            with open(path) as events:
                for line in events:
                    key, _, value = line.partition(" ")
                    if key == "max" and int(value) > 0:
                        return True
            return False
        except (OSError, ValueError):
            continue
    return None


def oom_score_adj(value):
    """This process's OOM score adjustment (a child inherits it when forked; raising it, and
    lowering it back to 0, needs no capability)."""
    with open("/proc/self/oom_score_adj", "w") as adj:
        adj.write(str(value))


def tmp_full():
    """Whether the script left /tmp (its only writable place) with no room."""
    try:
        return os.statvfs("/tmp").f_bavail == 0
    except OSError:
        return None


def main():
    plan = json.loads(sys.argv[1])
    LIBC.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nofile = plan["nofile"]
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
    # Nothing the script sends may end the init early (under gVisor it shares the init's uid);
    # a handler, not SIG_IGN, so the script's processes do not inherit the disposition.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
        signal.signal(signum, lambda *_: None)

    hold_read, hold_write = os.pipe()
    ready_read, ready_write = os.pipe()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    uid, gid = plan["script_user"]
    started = time.monotonic()
    # The OOM killer takes the script's processes (and their children) first, never the init.
    oom_score_adj(1000)
    script = subprocess.Popen(
        plan["command"],
        stdin=subprocess.DEVNULL,
        stdout=out_write,
        stderr=err_write,
        cwd="/tmp",
        env=dict(plan["env"], FT_SANDBOX_HOLD_FDS="%d,%d" % (hold_read, ready_write)),
        user=uid,
        group=gid,
        extra_groups=[],
        pass_fds=(hold_read, ready_write),
        preexec_fn=drop_capabilities,
    )
    oom_score_adj(0)
    for fd in (hold_read, ready_write, out_write, err_write):
        os.close(fd)
    stdout, stderr = Tail(out_read, plan["tail_bytes"]), Tail(err_read, plan["tail_bytes"])
    stdout.start()
    stderr.start()

    # The script's python says when it is held, past the interpreter's own start (or closes the
    # pipe by dying); only then is the profiler attached, so that start is not in the profile.
    ready = select.select([ready_read], [], [], plan["hold_seconds"])[0]
    if ready:
        os.read(ready_read, 1)
    os.close(ready_read)

    # The profiler: its output through a pipe only this process reads.
    profile_read, profile_write = os.pipe()
    banner_read, banner_write = os.pipe()
    spy_err_read, spy_err_write = os.pipe()
    profiler = plan["profiler"]
    try:
        spy = subprocess.Popen(
            profiler["command"]
            + ["--pid", str(script.pid), "--output", "/proc/self/fd/%d" % profile_write],
            stdin=subprocess.DEVNULL,
            stdout=banner_write,
            stderr=spy_err_write,
            pass_fds=(profile_write,),
        )
    except OSError as err:
        # The script runs unprofiled rather than not at all; the report says why.
        spy = NoProfiler(err)
        os.write(spy_err_write, ("cannot start %s: %s\n" % (profiler["command"][0], err)).encode())
    for fd in (profile_write, banner_write, spy_err_write):
        os.close(fd)
    profile = Tail(profile_read, plan["speedscope_bytes"], head=True)
    spy_err = Tail(spy_err_read, 4096)
    profile.start()
    spy_err.start()

    # Let the script go once the profiler samples (py-spy says "Sampling" once attached), or
    # when it gave up; never later than the hold limit.
    attached = threading.Event()

    def banner():
        seen = b""
        while True:
            try:
                chunk = os.read(banner_read, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen = (seen + chunk)[-4096:]
            if b"Sampling" in seen:
                attached.set()
        attached.set()

    threading.Thread(target=banner, daemon=True).start()
    attached.wait(plan["hold_seconds"])
    held_ms = int((time.monotonic() - started) * 1000)
    try:
        os.write(hold_write, b"go")
    except OSError:
        pass  # the script's python died before it was let go; its stderr says why
    os.close(hold_write)

    children = Children()
    timed_out = False
    status = children.wait_for(script.pid, plan["wall_seconds"])
    if status is None:
        timed_out = True
        # What py-spy saw up to the limit is the profile: it writes it before anything dies.
        stop_profiler(spy, children, plan["profiler_grace_seconds"])
        kill_everyone_else()
        status = children.wait_for(script.pid, 5)
    elif spy.pid > 0 and children.wait_for(spy.pid, plan["profiler_grace_seconds"]) is None:
        # py-spy ends by itself once the script's pythons have; a leftover child keeps it on.
        stop_profiler(spy, children, 5)
    spy_status = children.status_of(spy.pid, spy)
    kill_everyone_else()
    children.reap()
    for reader in (stdout, stderr, profile, spy_err):
        reader.join(5)

    code = os.waitstatus_to_exitcode(status) if status is not None else None
    folded, samples, dropped, problem = fold(profile, plan)
    report = {
        "exit_code": code if code is not None and code >= 0 else None,
        "signal": -code if code is not None and code < 0 else None,
        "timed_out": timed_out,
        "pids_exhausted": pids_exhausted(),
        "oom_killed": oom_killed(),
        "tmp_full": tmp_full(),
        "held_ms": held_ms,
        "stdout": stdout.report("tail"),
        "stderr": stderr.report("tail"),
        "profile": {"folded": folded, "bytes": len(folded), "truncated": dropped > 0, "samples": samples, "dropped_samples": dropped},
        "profiler": {"status": spy_status, "stderr": (spy_err.text() + problem)[-4096:]},
    }
    sys.stdout.write(json.dumps(report))
    sys.stdout.write("\n")
    sys.stdout.flush()


class Children:
    """Every child of this process (PID 1 also adopts the script's orphans), reaped as they end
    so that no zombie holds a process slot; the statuses of the ones asked for are kept."""

    def __init__(self):
        self.statuses = {}

    def reap(self):
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.statuses[pid] = status

    def wait_for(self, pid, timeout):
        """`pid`'s wait status once it ended, or None after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.reap()
            if pid in self.statuses:
                return self.statuses[pid]
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.005)

    def status_of(self, pid, process):
        status = self.statuses.get(pid)
        if status is None:
            return getattr(process, "returncode", None)
        return os.waitstatus_to_exitcode(status)


def short_file(path, prefixes):
    """A frame's file as py-spy's own output shows it: relative to the path it was imported from."""
    for prefix in prefixes:
        if path.startswith(prefix):
            return path[len(prefix) :]
    return path


def frame_text(frame, prefixes, max_chars):
    """`name (file)`, bounded, with nothing that could split a folded line: the names are the
    script's to choose, and a `;` or a line break in one would forge frames or whole stacks."""
    text = "%s (%s)" % (frame.get("name", "?"), short_file(frame.get("file") or "?", prefixes))
    text = "".join(" " if c in "\r\n\t\v\f" or ord(c) < 32 else c for c in text).replace(";", ":")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "\u2026"


def fold(profile, plan):
    """py-spy's speedscope file (JSON, so every name arrives escaped) as folded stacks, root
    first, biggest first, within the report's budget. Returns (text, samples, dropped, problem)."""
    if profile.truncated():
        return "", 0, 0, "the profile was larger than %d bytes, so it was left out\n" % profile.keep
    raw = bytes(profile.data)
    if not raw.strip():
        return "", 0, 0, ""
    try:
        document = json.loads(raw)
        frames = document["shared"]["frames"]
        prefixes = sorted(
            {"/work/", "/tmp/"}
            | {p.rstrip("/") + "/" for p in sys.path if p.startswith("/")}
            # The script's pythons also import from PYTHONPATH (the site hook's directory).
            | {
                p.rstrip("/") + "/"
                for p in plan["env"].get("PYTHONPATH", "").split(":")
                if p.startswith("/")
            },
            key=len,
            reverse=True,
        )
        names = [frame_text(f, prefixes, plan["max_frame_chars"]) for f in frames]
        counts = {}
        for each in document["profiles"]:
            for sample in each.get("samples", []):
                key = tuple(sample[: plan["max_depth"]])
                counts[key] = counts.get(key, 0) + 1
    except (ValueError, KeyError, TypeError, IndexError) as err:
        return "", 0, 0, "the profile could not be read: %s\n" % err
    samples = sum(counts.values())
    lines, size, dropped = [], 0, 0
    for key, count in sorted(counts.items(), key=lambda item: -item[1]):
        try:
            line = ";".join(names[i] for i in key) + " %d\n" % count
        except (IndexError, TypeError):
            dropped += count
            continue
        if size + len(line) > plan["profile_bytes"]:
            dropped += count
            continue
        lines.append(line)
        size += len(line)
    return "".join(lines), samples, dropped, ""


if __name__ == "__main__":
    main()
