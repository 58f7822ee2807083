from django.apps import AppConfig


class TestimonialsConfig(AppConfig):
    name = "testimonials"
    default_auto_field = "django.db.models.BigAutoField"
