import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a first user when there is none and print how to sign in."

    def handle(self, *args, **options) -> None:
        users = get_user_model().objects
        if users.exists():
            return
        username = os.getenv("DJANGO_SUPERUSER_USERNAME", "admin")
        password = os.getenv("DJANGO_SUPERUSER_PASSWORD", "")
        shown = "(the one in DJANGO_SUPERUSER_PASSWORD)" if password else ""
        if not password:
            password = shown = secrets.token_urlsafe(9)
        users.create_superuser(username=username, password=password, email="")
        self.stdout.write(
            self.style.SUCCESS(
                f"\nCreated the first user. Sign in with\n"
                f"    username: {username}\n    password: {shown}\n"
                "(change it from the user menu once signed in)\n"
            )
        )
