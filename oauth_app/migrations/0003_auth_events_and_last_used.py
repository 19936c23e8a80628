import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


def mark_clients_already_used(apps, schema_editor):
    """Clients that hold a token or grant now have been used: give them a last_used_at, so the
    housekeeping command never takes them for never-used ones once those rows expire."""
    from oauth2_provider.settings import oauth2_settings

    Application = apps.get_model("oauth_app", "Application")
    used = set()
    for model_name in ("AccessToken", "RefreshToken", "Grant"):
        rows = apps.get_model("oauth2_provider", model_name).objects.all()
        if model_name == "AccessToken":
            # Dynamic registration gives every client a registration token; that is not use.
            rows = rows.exclude(scope=oauth2_settings.DCR_REGISTRATION_SCOPE)
        used.update(rows.values_list("application_id", flat=True).distinct())
    used.discard(None)
    Application.objects.filter(pk__in=used).update(last_used_at=django.utils.timezone.now())


class Migration(migrations.Migration):

    dependencies = [
        ('oauth_app', '0002_redeemed_code'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_ACCESS_TOKEN_MODEL),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_REFRESH_TOKEN_MODEL),
        migrations.swappable_dependency(settings.OAUTH2_PROVIDER_GRANT_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='application',
            name='last_used_at',
            field=models.DateTimeField(blank=True, editable=False, help_text='When a code or token was last issued to it.', null=True),
        ),
        migrations.CreateModel(
            name='AuthEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('kind', models.CharField(choices=[('login', 'login'), ('login_failed', 'login failed'), ('locked_out', 'locked out'), ('logout', 'logout'), ('consent_granted', 'consent granted'), ('consent_denied', 'consent denied'), ('client_registered', 'client registered'), ('token_issued', 'token issued'), ('token_refreshed', 'token refreshed'), ('token_revoked', 'token revoked'), ('refresh_token_reuse', 'refresh token reuse detected'), ('code_replay', 'authorization code replay detected')], db_index=True, max_length=32)),
                ('username', models.CharField(blank=True, help_text='As typed, for a failed login.', max_length=150)),
                ('client_id', models.CharField(blank=True, help_text='The OAuth client concerned, if any.', max_length=255)),
                ('address', models.GenericIPAddressField(blank=True, help_text='The client address (REMOTE_ADDR).', null=True)),
                ('detail', models.CharField(blank=True, max_length=300)),
                ('user', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='auth_events', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at'],
                'indexes': [models.Index(fields=['kind', 'created_at'], name='oauth_app_a_kind_db1df1_idx')],
            },
        ),
        migrations.RunPython(mark_clients_already_used, migrations.RunPython.noop),
    ]
