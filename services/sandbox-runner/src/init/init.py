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


def stop_profiler(spy, grace):
    """Lets py-spy write what it has (it does on SIGINT) within `grace` seconds, else kills it."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


def reap():
    """Collects exited children (orphans of the script are re-parented to PID 1)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


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
    signal.signal(signal.SIGTERM, lambda *_: None)

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
    profile = Tail(profile_read, plan["profile_bytes"], head=True)
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
    os.write(hold_write, b"go")
    os.close(hold_write)

    timed_out = False
    try:
        status = script.wait(timeout=plan["wall_seconds"])
    except subprocess.TimeoutExpired:
        timed_out = True
        # What py-spy saw up to the limit is the profile: it writes it before anything dies.
        stop_profiler(spy, plan["profiler_grace_seconds"])
        kill_everyone_else()
        status = script.wait()
    else:
        # py-spy ends by itself once the script has; then the script's leftovers go.
        try:
            spy.wait(timeout=plan["profiler_grace_seconds"])
        except subprocess.TimeoutExpired:
            stop_profiler(spy, 5)
    kill_everyone_else()
    reap()
    for reader in (stdout, stderr, profile, spy_err):
        reader.join(5)

    report = {
        "exit_code": status if status >= 0 else None,
        "signal": -status if status < 0 else None,
        "timed_out": timed_out,
        "pids_exhausted": pids_exhausted(),
        "tmp_full": tmp_full(),
        "held_ms": held_ms,
        "stdout": stdout.report("tail"),
        "stderr": stderr.report("tail"),
        "profile": profile.report("folded"),
        "profiler": {"status": spy.returncode, "stderr": spy_err.text()},
    }
    sys.stdout.write(json.dumps(report))
    sys.stdout.write("\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
