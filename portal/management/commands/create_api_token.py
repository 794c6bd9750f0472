from argparse import ArgumentParser

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.models import ApiToken


class Command(BaseCommand):
    help = (
        "Create an API token for a user and print its key: only the key goes to stdout, "
        "so a script can capture it (KEY=$(manage.py create_api_token alice))."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="what the token is for")

    def handle(self, *args, username: str, name: str, **options) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user called “{username}”.")
        if not name.strip():
            raise CommandError("The token name can't be empty.")
        token, key = ApiToken.issue(user, name.strip()[:100])
        self.stdout.write(key)
        self.stderr.write(
            f"Token “{token.name}” created for {username}; the key above is shown only once.",
            style_func=self.style.WARNING,
        )
