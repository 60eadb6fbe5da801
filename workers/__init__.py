"""Celery workers: ``celery -A workers worker`` runs the per-event handlers."""

from workers.celery_app import create_celery_app

app = create_celery_app()
