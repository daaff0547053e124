"""The contract between the game and the engine, torch-free, importing nothing else
from ``engine``: ``messages`` (the frozen dataclasses on the wire), ``config`` (the
hero's settings), ``savedir`` (the save-folder layout, the lock, the pid file) and
``client`` (the one way to connect to a running engine)."""
