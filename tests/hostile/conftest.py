"""Hostile tests reuse the backup tests' real local repositories."""

from tests.backup.conftest import open_repo, repo, repo_dir

__all__ = ["open_repo", "repo", "repo_dir"]
