"""Seed 003's ``Testimonial`` with the poster it gets from posterflow, and the jobs that made
them (recorded when posterflow's completion webhook arrives)."""

from __future__ import annotations

from django.db import models


class PosterStatus(models.TextChoices):
    NONE = "none", "No poster"
    PENDING = "pending", "Generating"
    COMPLETED = "completed", "Ready"
    FAILED = "failed", "Failed"


class Testimonial(models.Model):
    user_id = models.IntegerField(null=True, blank=True)
    consumer_name = models.CharField(max_length=200)
    message = models.TextField()
    rating = models.DecimalField(max_digits=2, decimal_places=1, default=5)
    approved = models.BooleanField(default=True)
    # A presigned S3 URL: long, and it expires (re-read the job or store the key for later).
    poster_url = models.TextField(blank=True, default="")
    poster_status = models.CharField(max_length=16, choices=PosterStatus.choices, default=PosterStatus.NONE)
    poster_job_id = models.CharField(max_length=64, blank=True, default="", db_index=True)
    poster_error = models.TextField(blank=True, default="")
    poster_generated_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.consumer_name} ({self.rating}★)"


class PosterJob(models.Model):
    """One posterflow job, as its webhook reported it."""

    job_id = models.CharField(max_length=64, primary_key=True)
    status = models.CharField(max_length=32)
    total = models.IntegerField(default=0)
    succeeded = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    results_url = models.TextField(blank=True, default="")
    webhook_received_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.IntegerField(default=0)
