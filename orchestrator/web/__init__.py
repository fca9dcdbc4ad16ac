"""The local web view of the history (`orchestrate ui`): server-rendered pages over the store,
live through server-sent events, with no build step and nothing fetched from elsewhere at run
time (the stylesheet and the one script are files of this package).

It reads the store through its public read methods and the run's JSON log for streamed text;
it never writes. `create_app` builds the ASGI application; `cli/web.py` serves it with uvicorn.
"""

from orchestrator.web.app import LOOPBACK_HOSTS, create_app

__all__ = ["LOOPBACK_HOSTS", "create_app"]
