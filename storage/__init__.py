"""Where repositories are stored: the backend contract, local/S3/SFTP backends, one opener, wrappers.

The layer between ``dc/`` and ``backup/``: it knows objects, keys and URLs, never packs,
snapshots or repository keys.
"""
