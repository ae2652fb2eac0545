"""Database plumbing: the one-statement engine, the upsert builder, ids, time, transient failures."""
