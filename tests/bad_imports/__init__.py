"""Modules that misbehave while being imported, one per way (`tests/test_guard.py`): each runs
`tests.bad_user_code.act` at import, so `MODULE:make` never gets as far as naming anything."""
