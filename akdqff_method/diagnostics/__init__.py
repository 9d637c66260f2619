"""Diagnoses of trained AKDQFF runs: :mod:`.density_views` (the kernel density on fewer training views against all)."""
