"""flamethread sandbox: the site hook of every python in a run (on PYTHONPATH).

The script's first python waits here, before the script's first line, until the sandbox init says
its profiler is attached: so a script that runs for a fifth of a second is profiled from its start.
The variable is removed first, so the script's own pythons (children) never wait.
"""

import os as _os


def _flamethread_hold():
    fd = _os.environ.pop("FT_SANDBOX_HOLD_FD", None)
    if fd is None:
        return
    try:
        _os.read(int(fd), 2)
        _os.close(int(fd))
    except (OSError, ValueError):
        pass


_flamethread_hold()
del _flamethread_hold, _os
