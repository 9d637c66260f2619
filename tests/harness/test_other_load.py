"""The record's measure of how quiet the machine was: other programs' CPU, in cores."""

import subprocess
import sys
import time

from akdqff_bench.runner import OtherLoad


def test_a_busy_neighbour_shows_up_and_the_run_itself_does_not():
    load = OtherLoad.start()
    assert load is not None  # psutil reads /proc/stat on Linux, where CI runs
    # This process burns CPU for a while: that is the run's own time, not another program's.
    end = time.process_time() + 0.5
    while time.process_time() < end:
        pass
    own_only = load.cores()

    load = OtherLoad.start()
    neighbour = subprocess.Popen([sys.executable, "-c", "import time\nend = time.process_time() + 1.5\nwhile time.process_time() < end: pass"])
    neighbour.wait(timeout=60)
    with_neighbour = load.cores()

    # A neighbour spinning one core for its whole life is ~1 core (less its start-up); the run's own
    # spinning must not count. Margins leave room for CI's background work.
    assert with_neighbour > 0.5
    assert own_only < with_neighbour - 0.3
