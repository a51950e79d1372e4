"""AWS collector: describes only what the TargetGroupBindings reference, in the bundle `aws.json` shape.

`collect_account` starts from the bindings' target groups and follows references outwards:
target groups → their health, attributes and load balancers → listeners and load-balancer ENIs →
the ENIs/instances holding the targets → security groups, subnets, VPCs and network ACLs of all of
those. The result is a dict keyed by AWS operation name (docs/DESIGN.md, "Bundles"): list-shaped calls
are merged into one response, per-resource calls are keyed by ARN, datetimes become ISO strings and
``ResponseMetadata`` / paging tokens are dropped. No boto3 object leaves this module.

Call economy (docs/DESIGN.md, "Performance budget"): target groups and load balancers are described 20 per
call (the API maximum), health once per target group, attributes served from a cache for
`attribute_ttl` seconds, EC2 lookups batched (199 filter values + the vpc-id filter, as the controller
does), and every paginated call is followed with boto3 paginators. Retries use botocore's adaptive
mode; `before_call` sees every HTTP attempt (retries included) so that a shared rate limiter counts
what AWS's token buckets count.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

# The calls a poll answers, keyed as in a bundle's aws.json: the bundle format owns the list.
from bindings.analysis.bundle import AWS_OPERATIONS
from bindings.collect.aws_answers import (
    Cache,
    chunks,
    code_in,
    describe_with_bisect,
    eni_holds,
    listed,
    plain,
    through_cache,
    through_cache_by_id,
    unique,
    with_list,
)
from bindings.collect.errors import AwsError, AwsThrottled, AwsUnavailable
from bindings.textsafe import without_nul
from bindings.vocabulary import THROTTLED_MARK

TG_BATCH = 20  # DescribeTargetGroups / DescribeLoadBalancers reject more than 20 ARNs
FILTER_BATCH = 199  # 200 filter values per call, minus the vpc-id value (as the controller chunks)
ID_BATCH = 200  # ids per EC2 Describe* call: keeps requests and NotFound bisection small
SESSION_NAME = "binding-health"
THROTTLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
UNAVAILABLE_CODES = frozenset({"ServiceUnavailable", "InternalError", "InternalFailure", "Unavailable"})

# Operations answered with a list under this response key; the others are maps keyed by id.
_LISTED_UNDER = {
    "DescribeLoadBalancers": "LoadBalancers",
    "DescribeListeners": "Listeners",
    "DescribeTargetGroups": "TargetGroups",
    "DescribeNetworkInterfaces": "NetworkInterfaces",
    "DescribeInstances": "Reservations",
    "DescribeSecurityGroups": "SecurityGroups",
    "DescribeSubnets": "Subnets",
    "DescribeVpcs": "Vpcs",
    "DescribeNetworkAcls": "NetworkAcls",
    "DescribeVpcEndpointServiceConfigurations": "ServiceConfigurations",
}
PREFIX_LIST_BATCH = 100  # PrefixListIds per DescribeManagedPrefixLists call (its MaxResults cap)
PREFIX_LIST_TTL = 86400  # seconds a prefix list version's entries stay cached


@dataclass(frozen=True)
class AwsTarget:
    """One AWS account and region to poll.

    Credentials come from the default chain (environment, shared config, instance/pod role); with
    `role_arn` the collector assumes that role first (`external_id` optional). `endpoint_url` goes to
    every client (moto in tests and the demo). The timeouts and `max_attempts` feed botocore's config.
    """

    account_id: str
    region: str
    role_arn: str | None = None
    external_id: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 6
    connect_timeout: float = 5
    read_timeout: float = 20


@dataclass
class AwsSnapshot:
    """What one poll of an account returned: plain dicts only."""

    responses: dict[str, Any]
    api_calls: dict[str, int] = field(default_factory=dict)
    missing_target_groups: list[str] = field(default_factory=list)


# -- sessions ----------------------------------------------------------------------------------------
_session_lock = threading.Lock()
_assumed_sessions: dict[tuple[Any, ...], tuple[boto3.session.Session, dt.datetime]] = {}
_SESSION_MARGIN = dt.timedelta(minutes=5)  # renew before expiry so no call runs on expiring creds


def _new_session(**kwargs: Any) -> boto3.session.Session:
    """A boto3 session; a seam for tests that register botocore event handlers on it."""
    return boto3.session.Session(**kwargs)


def _botocore_config(target: AwsTarget) -> Config:
    return Config(
        retries={"mode": "adaptive", "max_attempts": target.max_attempts},
        connect_timeout=target.connect_timeout,
        read_timeout=target.read_timeout,
        user_agent_extra="binding-health",
    )


def clear_session_cache() -> None:
    """Forget assumed-role sessions (tests; credential rotation)."""
    with _session_lock:
        _assumed_sessions.clear()


class _Calls:
    """Creates clients wired for counting, rate limiting and error translation."""

    def __init__(self, target: AwsTarget, before_call: Callable[[str], None] | None) -> None:
        self.target = target
        self.before_call = before_call
        self.counts: dict[str, int] = {}
        self.config = _botocore_config(target)
        self._clients: dict[str, Any] = {}
        self._session: boto3.session.Session | None = None

    # Logical calls (one per API call, whatever the retries) go to api_calls; HTTP attempts go to
    # before_call, which is what a rate limiter shared with the controller must see.
    def _count(self, model: Any = None, **_: Any) -> None:
        name = getattr(model, "name", "Unknown")
        self.counts[name] = self.counts.get(name, 0) + 1

    def _attempt(self, event_name: str = "", **_: Any) -> None:
        if self.before_call is not None:
            self.before_call(event_name.rsplit(".", 1)[-1])

    def _wire(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._count)
        client.meta.events.register("before-send", self._attempt)
        return client

    def session(self) -> boto3.session.Session:
        if self._session is None:
            self._session = self._make_session()
        return self._session

    def _make_session(self) -> boto3.session.Session:
        target = self.target
        if not target.role_arn:
            return _new_session(region_name=target.region)
        key = (target.role_arn, target.external_id, target.region, target.endpoint_url)
        now = dt.datetime.now(dt.UTC)
        with _session_lock:
            cached = _assumed_sessions.get(key)
            if cached is not None and cached[1] - _SESSION_MARGIN > now:
                return cached[0]
        base = _new_session(region_name=target.region)
        sts = self._wire(
            base.client(
                "sts", region_name=target.region, endpoint_url=target.endpoint_url, config=self.config
            )
        )
        params: dict[str, Any] = {"RoleArn": target.role_arn, "RoleSessionName": SESSION_NAME}
        if target.external_id:
            params["ExternalId"] = target.external_id
        creds = self.run("AssumeRole", sts.assume_role, **params)["Credentials"]
        session = _new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=target.region,
        )
        expiry = creds["Expiration"]
        if isinstance(expiry, str):
            expiry = dt.datetime.fromisoformat(expiry)
        if expiry.tzinfo is None:
            expiry = expiry.replace(tzinfo=dt.UTC)
        with _session_lock:
            _assumed_sessions[key] = (session, expiry)
        return session

    def client(self, service: str) -> Any:
        if service not in self._clients:
            # Any: boto3-stubs type client() per literal service name, and `service` is a str.
            session: Any = self.session()
            client = session.client(
                service,
                region_name=self.target.region,
                endpoint_url=self.target.endpoint_url,
                config=self.config,
            )
            self._clients[service] = self._wire(client)
        return self._clients[service]

    def run(self, operation: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call `fn`, translating botocore failures into our error classes."""
        try:
            return fn(*args, **kwargs)
        except ClientError as exc:
            raise _translate(exc, operation) from exc
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError) as exc:
            raise AwsUnavailable(
                f"{operation}: AWS endpoint unreachable: {exc}", operation=operation
            ) from exc
        except ResponseParserError as exc:
            # A 200 that is not the service's format: a proxy's page, a captive portal.
            raise AwsUnavailable(
                f"{operation}: the answer is not an AWS response ({str(exc)[:200]})",
                operation=operation,
                code="UnexpectedAnswer",
            ) from exc
        except NoCredentialsError as exc:
            raise AwsError(f"{operation}: no AWS credentials found", operation=operation) from exc
        except BotoCoreError as exc:
            raise AwsError(f"{operation}: {exc}", operation=operation) from exc

    def pages(self, service: str, operation: str, method: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Pages of a paginated call, with error translation around every page fetch."""
        paginator = self.client(service).get_paginator(method)
        iterator = iter(paginator.paginate(**kwargs))
        while True:
            page = self.run(operation, next, iterator, None)
            if page is None:
                return
            yield page


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _translate(exc: ClientError, operation: str) -> AwsError | AwsThrottled | AwsUnavailable:
    code = _error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    text = f"{operation}: {code}: {message}"
    if code in THROTTLE_CODES:
        return AwsThrottled(f"{text} {THROTTLED_MARK}", operation=operation, code=code)
    if code in UNAVAILABLE_CODES or status >= 500:
        return AwsUnavailable(text, operation=operation, code=code)
    return AwsError(text, operation=operation, code=code)


# -- the collector -----------------------------------------------------------------------------------
def collect_account(
    target: AwsTarget,
    *,
    target_group_arns: Iterable[str],
    target_group_names: Iterable[str] = (),
    node_instance_ids: Iterable[str] = (),
    pod_eni_ids: Iterable[str] = (),
    cache: Cache | None = None,
    attribute_ttl: float = 600,
    before_call: Callable[[str], None] | None = None,
    topology_ttl: float = 0,
    stable_target_groups: Iterable[str] = (),
    stable_health_ttl: float = 0,
) -> AwsSnapshot:
    """Describe the AWS side of the given target groups (by ARN or name) in one account and region.

    `node_instance_ids` are the cluster's EC2 nodes (from providerIDs): ip targets are first looked up
    among their ENIs' secondary IPs and prefixes, like the controller does. `pod_eni_ids` are
    security-groups-for-pods branch ENIs (pod annotation ``vpc.amazonaws.com/pod-eni``). Target IPs
    found in neither are searched with DescribeNetworkInterfaces address filters.

    With `cache` and `topology_ttl` > 0, subnets and VPCs (CIDRs that practically never change
    once created) are served per id from the cache for that long; security groups, ENIs and NACLs
    are never cached because their changes are exactly what the analysis must see.

    Health is the live signal and is described every poll, except for `stable_target_groups`
    (chosen by the poller: every binding on them reachable, every target healthy, nothing changed
    for a day): their last answer serves for up to `stable_health_ttl` seconds, so the API budget
    goes to the groups people are watching.

    Raises `AwsThrottled` / `AwsUnavailable` (retry later) or `AwsError` (names the operation).
    """
    calls = _Calls(target, before_call)
    # Every operation of the bundle format answers, even when nothing was found.
    out: dict[str, Any] = {
        op: {_LISTED_UNDER[op]: []} if op in _LISTED_UNDER else {} for op in AWS_OPERATIONS
    }
    run = _Collection(calls, out, cache, f"binding-health:aws:{target.account_id}:{target.region}")

    # 1. Target groups, by ARN then by name.
    tgs, missing = _describe_target_groups(calls, list(target_group_arns), list(target_group_names))
    out["DescribeTargetGroups"]["TargetGroups"] = tgs

    # 2. Health (the live signal: cached only for stable groups) and attributes (cached: they
    # rarely change).
    stable = frozenset(stable_target_groups) if cache is not None and stable_health_ttl > 0 else frozenset()
    ip_targets, instance_targets = _collect_target_group_details(
        run, tgs, missing, stable=stable, stable_health_ttl=stable_health_ttl, attribute_ttl=attribute_ttl
    )
    missing_set = set(missing)
    out["DescribeTargetGroups"]["TargetGroups"] = [t for t in tgs if t["TargetGroupArn"] not in missing_set]

    # 3. Load balancers of those target groups, their attributes and listeners; 3b. the PrivateLink
    #    endpoint services in front of them.
    lbs = _collect_load_balancers(run, tgs, attribute_ttl)
    if lbs:
        _collect_endpoint_services(run, lbs)

    # 4. Instances: the nodes (to find pod IPs on their ENIs) and instance targets.
    instance_ids = unique([*node_instance_ids, *instance_targets])
    reservations = _describe_instances(calls, instance_ids)
    out["DescribeInstances"]["Reservations"] = reservations
    instances = [i for r in reservations for i in r.get("Instances", [])]

    # 5. ENIs: those holding ip targets (node secondary IPs/prefixes), pod branch ENIs, instance
    #    targets' primary ENIs, then a filtered search for target IPs still unaccounted for.
    enis = _collect_enis(calls, instances, list(pod_eni_ids), ip_targets, instance_targets, lbs)
    out["DescribeNetworkInterfaces"]["NetworkInterfaces"] = list(enis.values())

    # 6. Security groups, subnets, VPCs and NACLs of everything collected so far.
    _collect_security_groups(run, enis, lbs, instances)
    subnet_ids = _collect_subnets_and_vpcs(run, topology_ttl, enis, lbs, instances)
    _collect_network_acls(run, subnet_ids)
    out["GetManagedPrefixListEntries"] = _prefix_list_entries(
        calls, cache, f"{run.cache_prefix}:prefix-list", out["DescribeSecurityGroups"]["SecurityGroups"]
    )

    # No NUL may reach PostgreSQL (descriptions and tags are user-written text).
    return AwsSnapshot(
        responses=without_nul(out), api_calls=dict(calls.counts), missing_target_groups=unique(missing)
    )


@dataclass
class _Collection:
    """One `collect_account` run: its calls, the answers so far (keyed as in a bundle's aws.json)
    and the cache with this account and region's key prefix."""

    calls: _Calls
    out: dict[str, Any]
    cache: Cache | None
    cache_prefix: str


def _collect_target_group_details(
    run: _Collection,
    tgs: list[dict[str, Any]],
    missing: list[str],
    *,
    stable: frozenset[str],
    stable_health_ttl: float,
    attribute_ttl: float,
) -> tuple[dict[str, str], list[str]]:
    """Health and attributes of every target group: (target IP -> VPC of its target group, instance
    target ids). A group deleted since it was described is appended to `missing`."""
    calls, out, cache = run.calls, run.out, run.cache
    ip_targets: dict[str, str] = {}  # target IP -> VPC of its target group
    instance_targets: list[str] = []
    for tg in tgs:
        arn = tg["TargetGroupArn"]
        health = _target_health(run, arn, stable=stable, stable_health_ttl=stable_health_ttl)
        if health is None:
            missing.append(arn)  # deleted between the two calls
            continue
        out["DescribeTargetHealth"][arn] = health
        for desc in health.get("TargetHealthDescriptions", []):
            target_id = desc.get("Target", {}).get("Id", "")
            if tg.get("TargetType") == "ip":
                ip_targets.setdefault(target_id, tg.get("VpcId", ""))
            elif tg.get("TargetType") == "instance":
                instance_targets.append(target_id)
        out["DescribeTargetGroupAttributes"][arn] = through_cache(
            cache,
            f"{run.cache_prefix}:tg-attributes:{arn}",
            attribute_ttl,
            functools.partial(_target_group_attributes, calls, arn),
        )
    return ip_targets, instance_targets


def _target_health(
    run: _Collection, arn: str, *, stable: frozenset[str], stable_health_ttl: float
) -> dict[str, Any] | None:
    """DescribeTargetHealth of one target group (a stable group's cached answer when there is one);
    None when the group no longer exists."""
    cache = run.cache
    health_key = f"{run.cache_prefix}:tg-health:{arn}"
    # `stable` is empty without a cache.
    health: dict[str, Any] | None = cache.get(health_key) if cache is not None and arn in stable else None
    if health is not None:
        return health
    try:
        health = plain(
            run.calls.run(
                "DescribeTargetHealth",
                run.calls.client("elbv2").describe_target_health,
                TargetGroupArn=arn,
            )
        )
        listed(health, "TargetHealthDescriptions", "DescribeTargetHealth")
    except AwsError as exc:
        if exc.code != "TargetGroupNotFound":
            raise
        return None
    if cache is not None and stable_health_ttl > 0:
        # Every answer is kept, so a group that turns stable has a recent one to reuse.
        cache.set(health_key, health, stable_health_ttl)
    return health


def _collect_load_balancers(
    run: _Collection, tgs: list[dict[str, Any]], attribute_ttl: float
) -> list[dict[str, Any]]:
    """The load balancers of `tgs`, each with its attributes (cached) and listeners."""
    calls, out = run.calls, run.out
    lb_arns = unique(arn for tg in tgs for arn in tg.get("LoadBalancerArns", []))
    lbs, _ = describe_with_bisect(
        lb_arns,
        TG_BATCH,
        lambda group: [
            lb
            for page in calls.pages(
                "elbv2", "DescribeLoadBalancers", "describe_load_balancers", LoadBalancerArns=group
            )
            for lb in listed(plain(page), "LoadBalancers", "DescribeLoadBalancers")
        ],
        code_in("LoadBalancerNotFound"),
    )
    out["DescribeLoadBalancers"]["LoadBalancers"] = lbs
    for lb in lbs:
        lb_arn = lb["LoadBalancerArn"]
        out["DescribeLoadBalancerAttributes"][lb_arn] = through_cache(
            run.cache,
            f"{run.cache_prefix}:lb-attributes:{lb_arn}",
            attribute_ttl,
            functools.partial(_load_balancer_attributes, calls, lb_arn),
        )
        for page in calls.pages("elbv2", "DescribeListeners", "describe_listeners", LoadBalancerArn=lb_arn):
            out["DescribeListeners"]["Listeners"].extend(
                listed(plain(page), "Listeners", "DescribeListeners")
            )
    return lbs


def _target_group_attributes(calls: _Calls, arn: str) -> dict[str, Any]:
    return with_list(
        plain(
            calls.run(
                "DescribeTargetGroupAttributes",
                calls.client("elbv2").describe_target_group_attributes,
                TargetGroupArn=arn,
            )
        ),
        "Attributes",
        "DescribeTargetGroupAttributes",
    )


def _load_balancer_attributes(calls: _Calls, lb_arn: str) -> dict[str, Any]:
    return with_list(
        plain(
            calls.run(
                "DescribeLoadBalancerAttributes",
                calls.client("elbv2").describe_load_balancer_attributes,
                LoadBalancerArn=lb_arn,
            )
        ),
        "Attributes",
        "DescribeLoadBalancerAttributes",
    )


def _collect_endpoint_services(run: _Collection, lbs: list[dict[str, Any]]) -> None:
    """PrivateLink: the endpoint services in front of `lbs`.

    The call cannot filter by load balancer, so it lists the account's (usually few) configurations
    and keeps the ones naming a collected LB. A role without the new permission keeps polling: the
    key is dropped, and the analysis says `unknown` only where PrivateLink would decide."""
    out = run.out
    wanted = {lb["LoadBalancerArn"] for lb in lbs}
    try:
        configurations = _paged(
            run.calls,
            "ec2",
            "DescribeVpcEndpointServiceConfigurations",
            "describe_vpc_endpoint_service_configurations",
            "ServiceConfigurations",
        )
    except AwsError as exc:
        if exc.code not in ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException"):
            raise
        del out["DescribeVpcEndpointServiceConfigurations"]
    else:
        out["DescribeVpcEndpointServiceConfigurations"]["ServiceConfigurations"] = [
            c for c in configurations if wanted & set(c.get("NetworkLoadBalancerArns") or ())
        ]


def _collect_enis(
    calls: _Calls,
    instances: list[dict[str, Any]],
    pod_eni_ids: list[str],
    ip_targets: dict[str, str],
    instance_targets: list[str],
    lbs: list[dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """The ENIs that matter, by id: those holding ip targets (node secondary IPs/prefixes), pod
    branch ENIs, instance targets' primary ENIs, the ENIs found by a filtered search for target IPs
    still unaccounted for, and the load balancers' own ENIs."""
    eni_ids: list[str] = list(pod_eni_ids)
    unresolved = set(ip_targets)
    instance_target_set = set(instance_targets)
    for instance in instances:
        for eni in instance.get("NetworkInterfaces", []):
            held = eni_holds(eni, unresolved)
            is_target_primary = (
                instance.get("InstanceId") in instance_target_set
                and eni.get("Attachment", {}).get("DeviceIndex") == 0
            )
            if held or is_target_primary:
                eni_ids.append(eni["NetworkInterfaceId"])
                unresolved -= held
    enis: dict[str, dict[str, Any]] = {}
    found, _ = describe_with_bisect(
        eni_ids,
        ID_BATCH,
        lambda group: _enis_by(calls, NetworkInterfaceIds=group),
        code_in("InvalidNetworkInterfaceID"),
    )
    for eni in found:
        enis[eni["NetworkInterfaceId"]] = eni
        unresolved -= eni_holds(eni, unresolved)
    for eni in _enis_by_ip(calls, {ip: ip_targets[ip] for ip in unresolved}):
        enis.setdefault(eni["NetworkInterfaceId"], eni)
    # The load balancers' own ENIs: their private addresses are the health-check (and, without
    # client IP preservation, data) sources. Description is "ELB " + the "net/<name>/<id>" ARN part.
    lb_descriptions = [
        "ELB " + lb["LoadBalancerArn"].split(":loadbalancer/", 1)[-1]
        for lb in lbs
        if lb.get("LoadBalancerArn")
    ]
    for group in chunks(unique(lb_descriptions), FILTER_BATCH):
        for eni in _enis_by(calls, Filters=[{"Name": "description", "Values": group}]):
            enis.setdefault(eni["NetworkInterfaceId"], eni)
    return enis


def _collect_security_groups(
    run: _Collection,
    enis: dict[str, dict[str, Any]],
    lbs: list[dict[str, Any]],
    instances: list[dict[str, Any]],
) -> None:
    """The security groups of the ENIs, load balancers and instances collected so far."""
    calls = run.calls
    sg_ids = unique(
        [
            *(g.get("GroupId") for eni in enis.values() for g in eni.get("Groups", [])),
            *(sg for lb in lbs for sg in lb.get("SecurityGroups", []) or []),
            *(g.get("GroupId") for i in instances for g in i.get("SecurityGroups", [])),
            *(
                g.get("GroupId")
                for i in instances
                for e in i.get("NetworkInterfaces", [])
                for g in e.get("Groups", [])
            ),
        ]
    )
    run.out["DescribeSecurityGroups"]["SecurityGroups"], _ = describe_with_bisect(
        sg_ids,
        ID_BATCH,
        lambda group: _paged(
            calls,
            "ec2",
            "DescribeSecurityGroups",
            "describe_security_groups",
            "SecurityGroups",
            GroupIds=group,
        ),
        code_in("InvalidGroup.NotFound", "InvalidGroupId"),
    )


def _collect_subnets_and_vpcs(
    run: _Collection,
    topology_ttl: float,
    enis: dict[str, dict[str, Any]],
    lbs: list[dict[str, Any]],
    instances: list[dict[str, Any]],
) -> list[str]:
    """The subnets and VPCs of everything collected so far (per id from the cache for
    `topology_ttl` seconds when it is > 0); returns the subnet ids."""
    calls, out = run.calls, run.out
    topology_cache = run.cache if topology_ttl > 0 else None
    subnet_ids = unique(
        [
            *(eni.get("SubnetId") for eni in enis.values()),
            *(az.get("SubnetId") for lb in lbs for az in lb.get("AvailabilityZones", [])),
            *(i.get("SubnetId") for i in instances),
        ]
    )
    out["DescribeSubnets"]["Subnets"] = through_cache_by_id(
        topology_cache,
        f"{run.cache_prefix}:subnet",
        topology_ttl,
        subnet_ids,
        "SubnetId",
        lambda ids: describe_with_bisect(
            ids,
            ID_BATCH,
            lambda group: _paged(
                calls, "ec2", "DescribeSubnets", "describe_subnets", "Subnets", SubnetIds=group
            ),
            code_in("InvalidSubnetID"),
        )[0],
    )
    vpc_ids = unique(
        [
            *(tg.get("VpcId") for tg in out["DescribeTargetGroups"]["TargetGroups"]),
            *(lb.get("VpcId") for lb in lbs),
            *(eni.get("VpcId") for eni in enis.values()),
            *(s.get("VpcId") for s in out["DescribeSubnets"]["Subnets"]),
        ]
    )
    out["DescribeVpcs"]["Vpcs"] = through_cache_by_id(
        topology_cache,
        f"{run.cache_prefix}:vpc",
        topology_ttl,
        vpc_ids,
        "VpcId",
        lambda ids: describe_with_bisect(
            ids,
            ID_BATCH,
            lambda group: _paged(calls, "ec2", "DescribeVpcs", "describe_vpcs", "Vpcs", VpcIds=group),
            code_in("InvalidVpcID"),
        )[0],
    )
    return subnet_ids


def _collect_network_acls(run: _Collection, subnet_ids: list[str]) -> None:
    """The network ACLs associated with `subnet_ids`."""
    acls: dict[str, dict[str, Any]] = {}
    for group in chunks(subnet_ids, FILTER_BATCH):
        for acl in _paged(
            run.calls,
            "ec2",
            "DescribeNetworkAcls",
            "describe_network_acls",
            "NetworkAcls",
            Filters=[{"Name": "association.subnet-id", "Values": group}],
        ):
            acls.setdefault(acl["NetworkAclId"], acl)
    run.out["DescribeNetworkAcls"]["NetworkAcls"] = list(acls.values())


def _prefix_list_entries(
    calls: _Calls, cache: Cache | None, prefix: str, groups: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`{prefixListId: {"Entries": [...]}}` for every prefix list a rule of `groups` names.

    DescribeManagedPrefixLists answers for up to 100 lists in one call with each list's `Version`;
    the entries (GetManagedPrefixListEntries, one list per call) are cached per (id, version), so
    an unchanged list costs no call and a changed one is seen on the next poll. A list that no
    longer exists is left out: the analysis then reads it as unknown, never as empty.
    """
    ids = unique(
        [
            str(pair.get("PrefixListId"))
            for group in groups
            for permission in (*group.get("IpPermissions", []), *group.get("IpPermissionsEgress", []))
            for pair in permission.get("PrefixListIds", [])
            if pair.get("PrefixListId")
        ]
    )
    if not ids:
        return {}
    described, _ = describe_with_bisect(
        ids,
        PREFIX_LIST_BATCH,
        lambda group: _paged(
            calls,
            "ec2",
            "DescribeManagedPrefixLists",
            "describe_managed_prefix_lists",
            "PrefixLists",
            PrefixListIds=group,
        ),
        code_in("InvalidPrefixListID", "InvalidPrefixListId"),
    )
    out: dict[str, dict[str, Any]] = {}
    for item in described:
        list_id, version = item.get("PrefixListId"), item.get("Version")
        if not list_id:
            continue
        key = f"{prefix}:{list_id}:{version}"
        entries = cache.get(key) if cache is not None and version is not None else None
        if entries is None:
            try:
                entries = _paged(
                    calls,
                    "ec2",
                    "GetManagedPrefixListEntries",
                    "get_managed_prefix_list_entries",
                    "Entries",
                    PrefixListId=list_id,
                )
            except AwsError as exc:
                if code_in("InvalidPrefixListID", "InvalidPrefixListId")(exc):
                    continue  # deleted between the two calls
                raise
            if cache is not None and version is not None:
                # A version's entries never change: the TTL only bounds what old versions keep.
                cache.set(key, entries, PREFIX_LIST_TTL)
        out[list_id] = {"Entries": entries}
    return out


def _paged(calls: _Calls, service: str, operation: str, method: str, key: str, **kwargs: Any) -> list[Any]:
    return [
        item
        for page in calls.pages(service, operation, method, **kwargs)
        for item in listed(plain(page), key, operation)
    ]


def _describe_target_groups(
    calls: _Calls, arns: list[str], names: list[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """Target groups by ARN (≤ 20 per call) and by name; returns (found, missing ARNs/names)."""
    not_found = code_in("TargetGroupNotFound")

    def by(param: str) -> Callable[[list[str]], list[dict[str, Any]]]:
        return lambda group: _paged(
            calls, "elbv2", "DescribeTargetGroups", "describe_target_groups", "TargetGroups", **{param: group}
        )

    found, missing = describe_with_bisect(arns, TG_BATCH, by("TargetGroupArns"), not_found)
    known_names = {tg.get("TargetGroupName") for tg in found}
    more, missing_names = describe_with_bisect(
        [n for n in unique(names) if n not in known_names], TG_BATCH, by("Names"), not_found
    )
    seen = {tg["TargetGroupArn"] for tg in found}
    found += [tg for tg in more if tg["TargetGroupArn"] not in seen]
    return found, missing + missing_names


def _describe_instances(calls: _Calls, instance_ids: list[str]) -> list[dict[str, Any]]:
    """Reservations for `instance_ids`, merged per reservation; unknown ids are skipped."""
    reservations, _ = describe_with_bisect(
        instance_ids,
        ID_BATCH,
        lambda group: _paged(
            calls, "ec2", "DescribeInstances", "describe_instances", "Reservations", InstanceIds=group
        ),
        code_in("InvalidInstanceID"),
    )
    merged: dict[str, dict[str, Any]] = {}
    for reservation in reservations:
        rid = reservation.get("ReservationId", "")
        if rid not in merged:
            merged[rid] = dict(reservation, Instances=[])
        have = {i.get("InstanceId") for i in merged[rid]["Instances"]}
        merged[rid]["Instances"] += [
            i for i in reservation.get("Instances", []) if i.get("InstanceId") not in have
        ]
    return list(merged.values())


def _enis_by(calls: _Calls, **kwargs: Any) -> list[dict[str, Any]]:
    return _paged(
        calls,
        "ec2",
        "DescribeNetworkInterfaces",
        "describe_network_interfaces",
        "NetworkInterfaces",
        **kwargs,
    )


def _enis_by_ip(calls: _Calls, ip_vpcs: dict[str, str]) -> list[dict[str, Any]]:
    """ENIs whose addresses are these IPs, searched per VPC and family, 199 values per call."""
    groups: dict[tuple[str, str], list[str]] = {}
    for ip, vpc in ip_vpcs.items():
        try:
            version = ipaddress.ip_address(ip).version
        except ValueError:
            continue  # not an IP (malformed target id): nothing to look up
        name = "addresses.private-ip-address" if version == 4 else "ipv6-addresses.ipv6-address"
        groups.setdefault((name, vpc), []).append(ip)
    result: list[dict[str, Any]] = []
    for (name, vpc), ips in sorted(groups.items()):
        for chunk in chunks(sorted(ips), FILTER_BATCH):
            filters = [{"Name": name, "Values": chunk}]
            if vpc:
                filters.append({"Name": "vpc-id", "Values": [vpc]})
            result += _enis_by(calls, Filters=filters)
    return result
