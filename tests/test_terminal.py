"""core/terminal.py: what the command lines print; the time a long job has left."""

from core.terminal import TimeLeft


def test_the_time_left_is_the_rest_at_the_rate_so_far_and_says_nothing_before_it_is_known():
    now = [100.0]
    left = TimeLeft(clock=lambda: now[0])
    assert left(0.10) == ""  # the first report: no rate yet
    now[0] = 103.0
    assert left(0.15) == ""  # 3 s in: too early to guess
    now[0] = 120.0
    assert left(0.30) == "about 70 s left"  # 20 s for 0.2 of the work: the 0.7 left takes 70 s
    assert _at(0.0, 0.10, 60.0) == "about 9 min left"  # 60 s for a tenth: 540 s for the rest
    assert _at(0.10, 1.0, 60.0) == ""  # done


def _at(p0: float, p1: float, seconds: float) -> str:
    now = [0.0]
    left = TimeLeft(clock=lambda: now[0])
    left(p0)
    now[0] = seconds
    return left(p1)
