"""`manage.py export_bundle CLUSTER PATH`: write what was last polled as a bundle."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from bindings import models as m
from bindings.services.exports import NothingPolled, cluster_bundle_write


class Command(BaseCommand):
    help = "Write the bundle of a cluster's last poll (directory, .tar.gz or .zip) for `analyze`."

    def add_arguments(self, parser) -> None:
        parser.add_argument("cluster", help="cluster name")
        parser.add_argument("path", help="a directory, or a file ending in .tar.gz/.tgz/.zip")

    def handle(self, *args, **opts) -> None:
        cluster = m.Cluster.objects.filter(name=opts["cluster"]).first()
        if cluster is None:
            raise CommandError(f"no cluster named {opts['cluster']!r}")
        try:
            path = cluster_bundle_write(cluster, opts["path"])
        except NothingPolled as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"wrote {path}; analyse it with: manage.py analyze {path}")
