"""The fleet: jobs run on workers on other hosts through Celery on a Redis broker
(docs/workers.md). An adapter: it may import the engine, git, outbound, settings and the
core; the run chain, the server and the CLI import it, never the other way round. celery and
redis are imported lazily, by the modules that talk to them."""
