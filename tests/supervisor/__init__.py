"""Tests of the supervisor's sans-IO pieces: the IPC codec and the dispatcher."""
