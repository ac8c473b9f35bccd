"""Run one management command and print, as the last line, this process's own peak
resident memory (``VmHWM`` from /proc/self/status), read before it exits.

``ru_maxrss`` of a child reaped with ``os.wait4`` is no use here: Linux carries the
parent's high-water mark across fork/exec, so a bare ``python -c pass`` forked from a
300 MB parent reports 313 MB."""

import json
import sys
from pathlib import Path


def own_peak_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # not Linux: the best there is


def main() -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from django.core.management import call_command

    code = 0
    try:
        call_command(*sys.argv[1:])
    except SystemExit as exit:
        code = exit.code or 0
    finally:
        sys.stdout.flush()
        print(json.dumps({"peak_kb": own_peak_kb()}), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
