"""Diagnoses of trained Block-NeRF runs (from their checkpoints; nothing here changes a record):
:mod:`.appearance` (do the test-time appearance codes sink the real scene's views?) and
:mod:`.blocks` (the blocks themselves, or how they are picked and blended?)."""
