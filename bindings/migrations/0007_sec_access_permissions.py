""" "Poll now" becomes its own permission (bindings.poll_cluster, bindings.poll_awsaccount),
separate from change_cluster / change_awsaccount.

So that an upgrade takes nothing away silently, every user and group holding change_cluster
(change_awsaccount) at migration time also gets poll_cluster (poll_awsaccount); from then on
the two are granted separately. Reversing drops nothing: the permission rows go with the model
options only if an operator deletes them.
"""

from django.db import migrations

GRANTS = (("cluster", "poll_cluster", "Can poll a cluster now"),)
GRANTS += (("awsaccount", "poll_awsaccount", "Can poll an AWS account now"),)


def grant_poll_to_editors(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    User = apps.get_model("auth", "User")
    db = schema_editor.connection.alias
    for model, codename, name in GRANTS:
        # Permissions are normally created after migrations (post_migrate); create this one now
        # so it can be granted. post_migrate then finds it and leaves it alone.
        content_type, _ = ContentType.objects.using(db).get_or_create(app_label="bindings", model=model)
        poll, _ = Permission.objects.using(db).get_or_create(
            content_type=content_type, codename=codename, defaults={"name": name}
        )
        change = (
            Permission.objects.using(db).filter(content_type=content_type, codename=f"change_{model}").first()
        )
        if change is None:
            continue  # a fresh database: nobody holds the change permission yet
        for group in Group.objects.using(db).filter(permissions=change):
            group.permissions.add(poll)
        for user in User.objects.using(db).filter(user_permissions=change):
            user.user_permissions.add(poll)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("bindings", "0006_verdicts_prefix_lists"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="awsaccount",
            options={
                "permissions": [("poll_awsaccount", "Can poll an AWS account now")],
                "verbose_name": "AWS account",
            },
        ),
        migrations.AlterModelOptions(
            name="cluster",
            options={"permissions": [("poll_cluster", "Can poll a cluster now")]},
        ),
        migrations.RunPython(grant_poll_to_editors, migrations.RunPython.noop),
    ]
