"""ablauf: durable workflows for Python, the Temporal way, with no server to run."""
