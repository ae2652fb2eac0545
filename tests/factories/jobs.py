"""Running background jobs in tests as the worker process would: a real RQ SimpleWorker, in burst mode."""

from __future__ import annotations

from rq import SimpleWorker


def drain(app, queue: str = "default") -> None:
    """Run everything queued on `queue`, then return."""
    from rq import Queue

    from marketplace.jobs import queue_name, redis_connection

    with app.app_context():
        redis = redis_connection(app)
        _BurstWorker([Queue(queue_name(queue, app), connection=redis)], connection=redis).work(burst=True)


class _BurstWorker(SimpleWorker):
    """A SimpleWorker without its command channel (stop or kill a job: nothing a burst drain takes).
    rq's pubsub thread waits up to 60 s for its subscription and its teardown joins that thread
    without a timeout, so under load a drained worker lingered a minute after its last job."""

    def subscribe(self):
        self.pubsub, self.pubsub_thread = None, None

    def unsubscribe(self):
        pass


def run_job(app, dotted: str, queue: str = "default"):
    """Enqueue the job by its dotted path (as the scheduler does), drain its queue, and return the
    job's return value; the job must have finished."""
    from marketplace.jobs import enqueue

    with app.app_context():
        job = enqueue(dotted)
    drain(app, queue)
    with app.app_context():
        job.refresh()
        assert job.get_status() == "finished", job.latest_result()
        return job.return_value()
