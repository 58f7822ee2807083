"""The REST API behind API Gateway: the seeds' endpoints plus jobs, on Powertools' resolver."""
