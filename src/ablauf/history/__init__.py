"""The vocabulary between engine and worker: Temporal's history events and
commands (``temporalio.api`` protos) plus the task records handed to workers."""
