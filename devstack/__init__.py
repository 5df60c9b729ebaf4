"""The embedded stack behind `make run`: real Temporal, SeaweedFS (S3) and SMTP servers, the API and the
worker, as supervised child processes on 127.0.0.1. Tests start the same servers through this package."""
