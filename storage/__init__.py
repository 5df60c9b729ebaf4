"""S3 object storage for evidence (the `minio` client; SeaweedFS embedded, MinIO in docker-compose)."""
