"""Runs: the one run chain that `conveyor run`, `conveyor play` and the server's run queue
share, and what surrounds it (sources of a run's files, its record in the store, the queue).

    request ──► chain: recover → checkout → load + validate → plan → resume → execute
                       → record → notify ──► final RunRecord

`chain` is the chain itself; `sources` obtains the files (the project folder, or a mirror's
worktree at the run's sha); `starts` says how the run record begins (a new run, a played
manual job resuming a run, a queued run); `records` the record writes they share; `queue`
is the server's persistent queue of runs. The engine (`conveyor.engine`) executes a plan;
this package decides which plan, for which record. It never serves HTTP nor renders a view.
"""
