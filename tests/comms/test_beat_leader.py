"""comms.beat.LeaderScheduler: of several beats, only the lease holder sends; a lost lease stops it."""

from __future__ import annotations

import pytest

from comms.beat import KEY, LeaderScheduler, beat_leader
from comms.redis import redis_client
from config.celery import app


@pytest.fixture
def make_beat(tmp_path, settings):
    settings.COMMS_BEAT_LOCK_SECONDS = 3
    made: list[LeaderScheduler] = []

    def make() -> LeaderScheduler:
        beat = LeaderScheduler(app=app, schedule_filename=str(tmp_path / f"schedule-{len(made)}"))
        beat.schedule.clear()  # no entries: tick() must not send anything to the broker here
        made.append(beat)
        return beat

    yield make
    for beat in made:
        beat.close()


def test_one_leads_the_other_waits_and_a_clean_stop_hands_over(make_beat):
    first, second = make_beat(), make_beat()
    assert first.tick() <= 1.0 and first.leading
    assert second.tick() == 1.0 and not second.leading  # a third of the lease: ask again soon
    assert beat_leader() == first.identity
    assert redis_client().pttl(KEY) > 2000

    first.close()  # releases at once instead of making the other wait out the lease
    assert beat_leader() == ""
    second.tick()
    assert second.leading and beat_leader() == second.identity


def test_a_leader_whose_lease_was_taken_steps_down(make_beat):
    """Paused past its lease (GC, a stopped VM) while another took over: it must not renew the
    other's key or send anything more."""
    first = make_beat()
    first.tick()
    redis_client().set(KEY, "node-b:1:other", px=3000)  # the lease expired and someone else holds it
    first.tick()
    assert not first.leading
    assert beat_leader() == "node-b:1:other"
