"""flamethread sandbox: the site hook of every python in a run (on PYTHONPATH).

The script's first python waits here, before the script's first line, until the sandbox init says
its profiler is attached: so a script that runs for a fifth of a second is profiled from its start.
The variable is removed first, so the script's own pythons (children) never wait.
"""

import os as _os


def _flamethread_hold():
    fds = _os.environ.pop("FT_SANDBOX_HOLD_FDS", None)
    if fds is None:
        return
    try:
        hold, ready = (int(fd) for fd in fds.split(","))
        # "Here": the init attaches the profiler only now, so the interpreter's own start is
        # not in the profile; then wait for "go".
        _os.write(ready, b"r")
        _os.close(ready)
        _os.read(hold, 2)
        _os.close(hold)
    except (OSError, ValueError):
        pass


_flamethread_hold()
del _flamethread_hold, _os
