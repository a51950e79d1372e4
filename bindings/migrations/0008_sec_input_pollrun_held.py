from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("bindings", "0007_sec_access_permissions"),
    ]

    operations = [
        migrations.AddField(
            model_name="pollrun",
            name="note",
            field=models.TextField(blank=True, help_text="Why a held poll waited."),
        ),
        migrations.AlterField(
            model_name="pollrun",
            name="status",
            field=models.CharField(
                choices=[
                    ("running", "Running"),
                    ("success", "Success"),
                    ("failed", "Failed"),
                    ("held", "Held"),
                ],
                default="running",
                max_length=16,
            ),
        ),
    ]
