"""akdqff-bench harness: datasets, profiles, one-run runner, grid, results and report."""

__version__ = "0.1.0"
