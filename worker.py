"""`python worker.py`: one worker process.

It polls the task queue of the Temporal server from Temporal's standard environment
configuration (default localhost:7233) with the ledger and rails from the PAYOUTS_*
settings. Run more of them on the same task queue to share the load. What it is made of
(which adapter serves which port, which workflows and activities it runs) is composed in
`payouts.app.worker`, so that `payouts up` and `payouts worker` run the same worker.
"""

from payouts.app.worker import main

if __name__ == "__main__":
    main()
