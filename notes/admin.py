from django.contrib import admin

from notes.models import Note


@admin.register(Note)
class NoteAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "updated")
    list_filter = ("owner",)
    search_fields = ("title", "body", "owner__username")
    readonly_fields = ("created", "updated")
