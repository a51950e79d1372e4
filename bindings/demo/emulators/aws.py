"""Emulated AWS: moto's threaded server on loopback, with network load balancers named as AWS
names them."""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import Any


# -- moto ------------------------------------------------------------------------------------------
class MotoServer:
    """moto's threaded HTTP server on 127.0.0.1 and a free (or given) port.

    moto keeps its state in process-global backends, shared by every server in the process; `start`
    therefore resets it. Don't run two `MotoServer`s at once in one process.
    """

    def __init__(self, *, port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # imported lazily: moto is heavy and test/demo-only

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.url = ""

    def start(self) -> MotoServer:
        """Start serving; `url` is set afterwards."""
        _network_load_balancer_arns()
        # werkzeug logs every request at INFO; that drowns test output and the demo's console.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        # moto's backends are process-global: a server started after another one in the same process
        # (e.g. the next test module) would see its resources. Start every server from a clean slate.
        self.reset()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def reset(self) -> None:
        """Drop every emulated AWS resource."""
        # Our own http://127.0.0.1 URL, never user input.
        request = urllib.request.Request(self.url + "/moto-api/reset", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            response.read()

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


_ARN_LOCK = threading.Lock()


def _network_load_balancer_arns() -> None:
    """moto (5.2) names every load balancer ``loadbalancer/app/...``; AWS names network load
    balancers ``loadbalancer/net/...`` (and their listeners ``listener/net/...``). Wrap moto's
    CreateLoadBalancer so an NLB gets the ARN AWS would give it. Idempotent."""
    from moto.elbv2 import models, utils

    if getattr(models.ELBv2Backend.create_load_balancer, "bh_net_arns", False):
        return
    original = models.ELBv2Backend.create_load_balancer

    def net_arn(**kwargs: Any) -> str:
        return utils.make_arn_for_load_balancer(**kwargs).replace(":loadbalancer/app/", ":loadbalancer/net/")

    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("loadbalancer_type") != "network":
            return original(self, *args, **kwargs)
        # The ARN is made by a module-level helper: swap it for this one call only.
        with _ARN_LOCK:
            models.make_arn_for_load_balancer = net_arn
            try:
                return original(self, *args, **kwargs)
            finally:
                models.make_arn_for_load_balancer = utils.make_arn_for_load_balancer

    create.bh_net_arns = True  # type: ignore[attr-defined]
    models.ELBv2Backend.create_load_balancer = create  # type: ignore[method-assign]
