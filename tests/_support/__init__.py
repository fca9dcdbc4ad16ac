"""Helpers more than one test folder uses, imported as `tests._support.<module>`.

They live here rather than in a folder's conftest.py because pytest imports each conftest under a
name of its own (`conftest`, `reliability.conftest`), so importing one conftest from another
folder loads a second copy of it. The fixtures built on these helpers are in tests/conftest.py.
"""
