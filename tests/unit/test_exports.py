"""The public surface is frozen here; changing it is a deliberate act."""

from __future__ import annotations

import temporalio.client

import ablauf
import ablauf.client
import ablauf.errors


def test_top_level_names() -> None:
    assert ablauf.__all__ == ["Client", "Worker", "__version__"]
    assert ablauf.Client is ablauf.client.Client
    assert issubclass(ablauf.Client, temporalio.client.Client)
    from ablauf.worker.worker import Worker

    assert ablauf.Worker is Worker


def test_error_tree() -> None:
    assert sorted(ablauf.errors.__all__) == [
        "AblaufError",
        "InvalidTargetError",
        "StoreError",
        "StoreLostError",
        "UnsupportedFeatureError",
    ]
    for name in ablauf.errors.__all__:
        assert issubclass(getattr(ablauf.errors, name), ablauf.errors.AblaufError)
    # The class docstring is the default message.
    assert str(ablauf.errors.StoreError()) == "The store cannot be used."


def test_testing_names() -> None:
    import ablauf.testing

    assert ablauf.testing.__all__ == ["WorkflowEnvironment"]
