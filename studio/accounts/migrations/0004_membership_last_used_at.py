from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_invitation_team_archived_at'),
    ]

    operations = [
        migrations.AddField(
            model_name='membership',
            name='last_used_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
