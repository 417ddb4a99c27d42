"""`make test-future`: every Python process started with this folder on PYTHONPATH (pytest,
the CLI and the AWS CLI it runs, the local stack's workers) reads a wall clock moved
JIT_TEST_CLOCK_SHIFT_DAYS ahead, ticking. time-machine moves time.time and datetime.now;
time.monotonic and sleeps are left alone, so timeouts and waits behave as usual.

(libfaketime was tried first: with Python 3.12 it makes timed waits hang or sleeps fail.)"""

import os

_days = os.environ.get("JIT_TEST_CLOCK_SHIFT_DAYS")
if _days:
    try:
        import time

        import time_machine
    except ImportError:  # another interpreter (the SAM tool venv): left on the real clock
        pass
    else:
        _traveller = time_machine.travel(time.time() + float(_days) * 86400, tick=True)
        _traveller.start()
