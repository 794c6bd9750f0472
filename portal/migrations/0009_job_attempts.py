from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0008_evaluation_label"),
    ]

    operations = [
        migrations.AddField(
            model_name="evaluation",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="importjob",
            name="attempts",
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
