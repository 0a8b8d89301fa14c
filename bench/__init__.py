"""Benchmark of bcpctl against restic and borg on a synthetic municipal dataset (issue 2)."""
