from django.conf import settings
from django.db import models

TITLE_CHARS = 200
BODY_CHARS = 20_000


class Note(models.Model):
    """A person's note: a title and a Markdown body."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=TITLE_CHARS)
    body = models.TextField(blank=True, max_length=BODY_CHARS)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated", "-id"]
        indexes = [models.Index(fields=["owner", "-updated"])]

    def __str__(self):
        return self.title

    @property
    def uri(self) -> str:
        return f"note://{self.pk}"
