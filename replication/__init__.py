"""Storage backends (local, S3, SFTP), keyless ciphertext-only sync, verification, lag."""
