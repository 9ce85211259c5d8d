"""The streaming sentiment service: Kafka in, onnxruntime batches, Redis cache, PostgreSQL out."""
