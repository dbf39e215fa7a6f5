"""The speed benchmark: the same workloads on ablauf and on a Temporal dev server.

``scripts/bench`` runs every workload on three engines, each in a process of its
own: a Temporal dev server that the run starts on free ports, ablauf's embedded
engine (a fresh SQLite file per workload), and ablauf with an fsync at every
commit (``?synchronous=full``). Workflows and activities (``bench/workloads.py``)
use the official SDK only; activities are async no-ops. Every workload runs an
untimed warm-up execution first; times are ``time.perf_counter`` on the client.

Workloads (full sizes; ``--quick`` shrinks them):
  gather           one workflow, 1,000 activities via asyncio.gather: activities/s,
                   from before execute_workflow until its result
  sequential       one workflow, 300 activities one after another: activities/s
  many_workflows   500 one-activity workflows, all started at once, then all
                   results awaited: workflows/s
  children         a parent starts 20 children at once; each runs 50 activities
                   one after another: activities/s
  signals          1,000 signals to one workflow, 50 in flight, from the first
                   send until the workflow (which completes at 1,000) returns
  queries          200 queries to one running, cached workflow, 50 in flight
  timers           200 workflows sleep 2 s, all started at once; per workflow,
                   lateness = wall-clock time its result reaches the client -
                   (its TimerStarted event's time + 2 s), i.e. after the timer was
                   due; p50, p99. "from start": result seen - start_workflow
                   called - 2 s, which adds the start and the wait for the first
                   workflow task (all 200 are started at once)
  start_to_result  200 one-activity workflows one after another; each
                   execute_workflow call timed; p50, p99
  memory           peak RSS of the process that ran the workloads (the client and
                   the worker); on Temporal plus the dev server's peak (VmHWM of
                   its process tree); workers of `scaling` are not in it
  import_connect   a fresh interpreter: from its first statement through the
                   imports and Client.connect (median of 5, after one untimed run
                   that creates the store); "(process)" is the whole process,
                   interpreter start and exit included
  replay           a workflow grows a history of >= 10,000 events (batches of 100
                   activities), then waits; its worker stops, a new one (empty
                   cache) starts, and one query is timed: a full replay (median of
                   3 new workers; on Temporal the sticky queue is reset first)
  scaling          400 workflows of 5 sequential activities, started by the
                   benchmark's process, run by 1 and then 2 worker processes on
                   one store (one SQLite file; one dev server): workflows/s, 2/1
  backlog          10,000 one-activity workflows queued in a new store by a client
                   process with no worker running, then drained by a worker
                   process started after (from its start until the client sees
                   the last result): workflows/s, and that over the in-process
                   rate (many_workflows, run again in the same pass; ablauf only)

Like for like: both engines run the same client calls through ``ablauf.Client``
and ``ablauf.Worker`` (on a Temporal target, temporalio's own client and worker,
with ablauf's defaults of 1,000 concurrent activities and 1,000 cached
workflows). The dev server keeps its SQLite file with an fsync per commit, so the
fsync column is the one with the same durability. Everything shares one machine:
on few cores, the dev server, the worker processes of ``scaling`` and the
benchmark's own process compete for them. Stores live in the temp directory
(``$TMPDIR``); the header gives the cost of a SQLite commit there, with and
without fsync, since on tmpfs an fsync costs nothing.
"""
