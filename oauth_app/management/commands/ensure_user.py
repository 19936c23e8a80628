"""Create a first user when none exists, with a random password printed once.

`make run` calls this so that a fresh install can log in straight away without
any fixed default password.
"""

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a superuser with a random password if no user exists yet."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, username, **options):
        User = get_user_model()
        if User.objects.exists():
            return
        password = secrets.token_urlsafe(15)
        User.objects.create_superuser(username=username, password=password, email="")
        bar = "=" * 64
        self.stdout.write(
            f"\n{bar}\nCreated the first user. This password is shown only once:\n"
            f"  username: {username}\n  password: {password}\n"
            f"Change it at /admin/password_change/ after you log in.\n{bar}\n"
        )
