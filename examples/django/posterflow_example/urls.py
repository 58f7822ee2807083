from django.urls import path
from testimonials import views

urlpatterns = [
    path("webhooks/posterflow/", views.posterflow_webhook, name="posterflow-webhook"),
]
