"""Everything conveyor does with git, behind one boundary.

    policy    the one policy: safe environment, credentials (GitAuth), named Timeouts,
              own group per process (describe's: a session only with a terminal); no asyncio
    describe  the local checkout -> Event, started early by `conveyor run` (synchronous)
    base      the `Git` Protocol and `GitFailed` (a GitError)
    adapter   `GitCli`, the real `Git`: one async subprocess per command (`run_git`)
    checkout  the server's mirrors and per-run worktrees (`Checkouts`)

Nothing outside this package starts a git process. The package itself imports nothing, so
`conveyor run` can load `git.describe` before asyncio.
"""

__all__: list[str] = []
