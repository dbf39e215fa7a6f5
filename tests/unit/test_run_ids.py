"""Run ids are RFC 9562 version-7 UUIDs: unique, and in the order they were made."""

from __future__ import annotations

import time
import uuid

from ablauf.engine import run_ids


def test_ids_made_in_a_burst_are_unique_ordered_and_carry_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = [run_ids._uuid7() for _ in range(20_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(made)) == len(made)
    assert [str(u) for u in made] == sorted(str(u) for u in made)
    assert {u.version for u in made} == {7}
    assert {u.variant for u in made} == {uuid.RFC_4122}
    stamps = [u.int >> 80 for u in made]
    # Ids of one millisecond count up; only a full counter borrows the next one.
    assert before <= stamps[0] and stamps[-1] <= after + 1


def test_new_run_id_is_a_uuid_string() -> None:
    run_id = run_ids.new_run_id()
    assert str(uuid.UUID(run_id)) == run_id


def test_ids_do_not_follow_the_application_s_random_seed_nor_repeat_in_a_fork() -> None:
    import os
    import random

    random.seed(42)
    first = run_ids._uuid7()
    random.seed(42)
    # Same millisecond or not, the random part must differ.
    assert (run_ids._uuid7().int & 0xFFFF_FFFF) != (first.int & 0xFFFF_FFFF)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, run_ids._uuid7().bytes)
        os._exit(0)
    os.waitpid(pid, 0)
    child = uuid.UUID(bytes=os.read(read, 16))
    mine = run_ids._uuid7()
    os.close(read)
    os.close(write)
    assert (child.int & 0xFFFF_FFFF) != (mine.int & 0xFFFF_FFFF)
