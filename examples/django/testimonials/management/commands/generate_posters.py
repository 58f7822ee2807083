"""``python manage.py generate_posters [--sync] [--no-wait] [--all]``: posters for approved
testimonials that have none."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from posterflow_client import Job

from testimonials import services
from testimonials.models import PosterStatus, Testimonial


class Command(BaseCommand):
    help = "Generate posters for approved testimonials through posterflow."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sync", action="store_true", help="one POST /api/generate per testimonial")
        parser.add_argument("--no-wait", action="store_true", help="submit the batch; the webhook stores the URLs")
        parser.add_argument("--all", action="store_true", help="also testimonials that already have a poster")
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args: Any, **options: Any) -> None:
        rows = Testimonial.objects.filter(approved=True)
        if not options["all"]:
            rows = rows.exclude(poster_status=PosterStatus.COMPLETED)
        todo = list(rows.order_by("pk"))
        if not todo:
            self.stdout.write("nothing to do")
            return
        if options["sync"]:
            for t in todo:
                self.stdout.write(f"{t.pk}: {services.generate_poster(t)}")
            return

        def progress(job: Job) -> None:
            self.stdout.write(f"{job.status}: {job.processed_items}/{job.total_items}")

        job = services.generate_posters(todo, wait=not options["no_wait"], timeout=options["timeout"],
                                        on_progress=progress)
        self.stdout.write(f"job {job.job_id}: {job.status or 'submitted'}")
