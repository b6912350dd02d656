from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('jobs', '0006_submit_attempts'),
    ]

    operations = [
        migrations.AddField(
            model_name='job',
            name='client_callback_owed_since',
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name='job',
            name='client_callback_attempts',
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
