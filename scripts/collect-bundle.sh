#!/usr/bin/env bash
# Collect a Binding Health bundle (docs/bundles.md) for one cluster with kubectl and the AWS CLI,
# then tar it, so `python manage.py analyze BUNDLE.tar.gz` can judge it offline.
#
# Read-only: it runs only `kubectl get` and `aws ... describe-*` / `get-*`. AWS calls are limited to
# the target groups the TargetGroupBindings reference, their load balancers, those resources' VPCs
# and the prefix lists their security-group rules name. Needs bash, kubectl, python3 (>= 3.7) and
# the AWS CLI (v1 or v2).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/collect-bundle.sh [CLUSTER] [options]

Collects the cluster's TargetGroupBindings, Services, EndpointSlices, Pods, Nodes and Events
(kubectl, current context unless --context) and the AWS resources behind them (AWS CLI), and
writes CLUSTER-bundle.tar.gz for `manage.py analyze`.

  CLUSTER                 cluster name recorded in bundle.json (default: the kubectl context's
                          name, an EKS context ARN shortened to the cluster name)
  -c, --cluster NAME      the same as the positional CLUSTER
  -o, --output FILE       archive to write (default: CLUSTER-bundle.tar.gz)
      --context CTX       kubectl context
      --region REGION     AWS region (default: the AWS CLI's own, e.g. AWS_REGION)
      --profile PROFILE   AWS CLI profile (default: the AWS CLI's own, e.g. AWS_PROFILE)
      --endpoint-url URL  one endpoint for every AWS call (an emulator, a proxy)
      --elbv2-endpoint-url URL, --ec2-endpoint-url URL
                          per-service endpoints (VPC interface endpoints); the AWS CLI's own
                          AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2, AWS_ENDPOINT_URL_EC2,
                          AWS_ENDPOINT_URL and AWS_USE_FIPS_ENDPOINT=true work too
      --client-cidr CIDR  client range for preserved-client-IP traffic (repeatable)
      --eni-sg-tags KEY=VALUE,...
                          the controller's --service-target-eni-security-group-tags, if it runs
                          with one (same syntax): it decides which security group gets the rules
      --parallel N        AWS calls at once (default 8; 1 to 64)
  -h, --help              this text

Target groups, load balancers and prefix lists that do not exist (or vanish while collecting)
are listed under "missing" in bundle.json; `analyze` reports their bindings TARGET_GROUP_NOT_FOUND.
Any other error stops the run, naming the step and the AWS error. Exit 0: bundle written;
1: collection failed; 2: bad usage or a missing program.
EOF
}

out=""
cluster=""
context=""
parallel=8
client_cidrs=()
eni_sg_tags=""
aws_opts=()
elbv2_endpoint=""
ec2_endpoint=""

die() { echo "collect-bundle: $*" >&2; exit 2; }
need() { [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value (see --help)"; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -o|--output) need "$@"; out="$2"; shift 2 ;;
    -c|--cluster) need "$@"; cluster="$2"; shift 2 ;;
    --context) need "$@"; context="$2"; shift 2 ;;
    --region|--profile|--endpoint-url) need "$@"; aws_opts+=("$1" "$2"); shift 2 ;;
    --elbv2-endpoint-url) need "$@"; elbv2_endpoint="$2"; shift 2 ;;
    --ec2-endpoint-url) need "$@"; ec2_endpoint="$2"; shift 2 ;;
    --client-cidr) need "$@"; client_cidrs+=("$2"); shift 2 ;;
    --eni-sg-tags) need "$@"; eni_sg_tags="$2"; shift 2 ;;
    --parallel) need "$@"; parallel="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option: $1 (see --help)" ;;
    *)
      [[ -z "$cluster" ]] || die "one cluster only: got '$cluster' and '$1' (see --help)"
      cluster="$1"; shift ;;
  esac
done
[[ "$parallel" =~ ^[0-9]+$ ]] && ((parallel >= 1 && parallel <= 64)) || die "--parallel must be 1 to 64"
IFS=',' read -r -a tag_items <<<"$eni_sg_tags"
for item in "${tag_items[@]+"${tag_items[@]}"}"; do
  key="${item%%=*}"
  [[ -z "$item" ]] || { [[ "$item" == *=* && -n "${key//[[:space:]]/}" ]] || die "--eni-sg-tags: '$item' is not KEY=VALUE"; }
done

command -v kubectl >/dev/null || die "kubectl not found on PATH"
command -v aws >/dev/null || die "aws CLI not found on PATH"
command -v python3 >/dev/null || die "python3 not found on PATH"

kube=(kubectl)
[[ -n "$context" ]] && kube+=(--context "$context")

if [[ -z "$cluster" ]]; then
  cluster="$("${kube[@]}" config current-context 2>/dev/null || true)"
  cluster="${cluster##*/}"  # EKS contexts are ARNs: keep the cluster name
  [[ -n "$cluster" ]] || cluster="cluster"
fi
# A file-name-safe stem for the bundle folder inside the archive.
stem="$(printf '%s' "$cluster" | tr -c 'A-Za-z0-9._-' '-')"
[[ -n "$out" ]] || out="${stem}-bundle.tar.gz"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bundle="$work/$stem"
mkdir -p "$bundle"

# kubectl's JSON is valid YAML, and the bundle reader's fast path: kubernetes.yaml holds JSON text.
echo "collect-bundle: kubernetes objects" >&2
if ! "${kube[@]}" get targetgroupbindings,services,endpointslices,pods,nodes,events -A -o json \
    >"$bundle/kubernetes.yaml" 2>"$work/kubectl.err"; then
  echo "collect-bundle: step 'kubernetes objects' failed: $(tail -n 3 "$work/kubectl.err")" >&2
  exit 1
fi

# The AWS side, in Python for bounded parallel calls, per-ARN retries and the merge. The AWS CLI's
# own settings (credentials, region, retries, endpoints) apply; the pager is off for CLI v2, and
# throttling is left to the CLI's adaptive retry mode unless the caller chose another.
export AWS_PAGER=""
export AWS_RETRY_MODE="${AWS_RETRY_MODE:-adaptive}"
export AWS_MAX_ATTEMPTS="${AWS_MAX_ATTEMPTS:-5}"
python3 - "$bundle" "$cluster" "$parallel" "$elbv2_endpoint" "$ec2_endpoint" "$eni_sg_tags" \
    "${client_cidrs[@]+"${client_cidrs[@]}"}" -- aws --output json "${aws_opts[@]+"${aws_opts[@]}"}" <<'PY'
import datetime
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

bundle, cluster, parallel, elbv2_endpoint, ec2_endpoint, eni_sg_tags = sys.argv[1:7]
sep = sys.argv.index("--")
client_cidrs, aws = sys.argv[7:sep], sys.argv[sep + 1 :]
parallel = int(parallel)
service_endpoints = {"elbv2": elbv2_endpoint, "ec2": ec2_endpoint}
# Both CLI majors print service errors as: An error occurred (Code) when calling the Op operation: msg
ERROR = re.compile(r"An error occurred \(([^)]*)\) when calling the (\w+) operation[^:]*: ?(.*)")
BATCH = 20  # DescribeTargetGroups / DescribeLoadBalancers take at most 20 ARNs or names
FILTER_BATCH = 200  # values per EC2 filter
TTY = sys.stderr.isatty()
calls = {"n": 0}
lock = threading.Lock()


class AwsError(Exception):
    def __init__(self, code, operation, message):
        super().__init__("{}: {}: {}".format(operation, code, message))
        self.code = code


class Failed(Exception):
    pass


def say(text):
    print("collect-bundle: " + text, file=sys.stderr, flush=True)


def call(service, command, *args):
    """Run one AWS CLI command; its JSON answer, or AwsError (a service error) / Failed."""
    cmd = list(aws)
    if service_endpoints.get(service):
        cmd += ["--endpoint-url", service_endpoints[service]]
    cmd += [service, command, *args]
    with lock:
        calls["n"] += 1
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if proc.returncode == 0:
        text = proc.stdout.strip()
        return json.loads(text) if text else {}
    err = proc.stderr.strip()
    match = ERROR.search(err)
    if match:
        raise AwsError(match.group(1), match.group(2), match.group(3).strip())
    last = err.splitlines()[-1] if err else "no error message"
    raise Failed("aws {} {} exited {}: {}".format(service, command, proc.returncode, last))


def run_stage(step, jobs):
    """Run callables `parallel` at a time with a progress line; results in order. The first
    failure cancels what has not started and stops the run, naming the step."""
    total = len(jobs)
    if total == 0:
        return []
    results = [None] * total
    done = 0
    shown = -1
    if TTY:
        print("collect-bundle: {} 0/{}".format(step, total), end="", file=sys.stderr, flush=True)
    with ThreadPoolExecutor(max_workers=min(parallel, total)) as pool:
        futures = {pool.submit(job): i for i, job in enumerate(jobs)}
        try:
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                done += 1
                # On a terminal the line is rewritten; in a log, one line per tenth and the last.
                if TTY:
                    print("\rcollect-bundle: {} {}/{}".format(step, done, total), end="", file=sys.stderr, flush=True)
                elif done == total or done * 10 // total > shown:
                    shown = done * 10 // total
                    say("{} {}/{}".format(step, done, total))
        except (AwsError, Failed) as exc:
            for other in futures:
                other.cancel()
            if TTY:
                print(file=sys.stderr)
            raise Failed("step '{}' failed: {}".format(step, exc)) from None
    if TTY:
        print(file=sys.stderr)
    return results


def chunks(items, size):
    return [items[i : i + size] for i in range(0, len(items), size)]


def unique(items):
    return list(dict.fromkeys(i for i in items if i))


def describe_batched(step, service, command, flag, ids, field, not_found):
    """Describe ids BATCH at a time; a batch failing with a not-found code (AWS fails the whole
    call for one unknown id) is retried id by id. Returns (found items, missing ids)."""

    def batch(group):
        def job():
            try:
                return call(service, command, flag, *group).get(field) or [], [], []
            except AwsError as exc:
                if exc.code not in not_found:
                    raise
                return [], [], group

        return job

    def single(one):
        def job():
            try:
                return call(service, command, flag, one).get(field) or [], [], []
            except AwsError as exc:
                if exc.code not in not_found:
                    raise
                return [], [one], []

        return job

    found, missing, retry = [], [], []
    for items, gone, again in run_stage(step, [batch(g) for g in chunks(ids, BATCH)]):
        found += items
        missing += gone
        retry += again
    if retry:
        for items, gone, _ in run_stage(step + " (one by one)", [single(i) for i in retry]):
            found += items
            missing += gone
    return found, missing


def per_resource(step, service, command, flag, ids, not_found):
    """One call per id; returns ({id: response}, ids that were not found)."""

    def one(item):
        def job():
            try:
                response = call(service, command, flag, item)
            except AwsError as exc:
                if exc.code not in not_found:
                    raise
                return item, None
            response.pop("ResponseMetadata", None)
            return item, response

        return job

    answers, missing = {}, []
    for item, response in run_stage(step, [one(i) for i in ids]):
        if response is None:
            missing.append(item)
        else:
            answers[item] = response
    return answers, missing


def by_key(items, key):
    return list({item.get(key) or json.dumps(item, sort_keys=True): item for item in items}.values())


def main():
    started = time.monotonic()
    with open(os.path.join(bundle, "kubernetes.yaml")) as fh:
        kube = json.load(fh)
    tg_arns, tg_names = [], []
    for item in kube.get("items") or []:
        if not isinstance(item, dict) or item.get("kind") != "TargetGroupBinding":
            continue
        spec = item.get("spec") if isinstance(item.get("spec"), dict) else {}
        arn, name = spec.get("targetGroupARN"), spec.get("targetGroupName")
        if isinstance(arn, str) and arn:
            tg_arns.append(arn)
        elif isinstance(name, str) and name:
            tg_names.append(name)
    tg_arns, tg_names = unique(tg_arns), unique(tg_names)
    say("{} target group ARNs and {} target group names referenced".format(len(tg_arns), len(tg_names)))

    missing = {"targetGroups": [], "targetGroupNames": [], "loadBalancers": [], "prefixLists": []}
    tg_not_found = ("TargetGroupNotFound",)
    lb_not_found = ("LoadBalancerNotFound",)
    tgs, gone = describe_batched(
        "target groups", "elbv2", "describe-target-groups", "--target-group-arns", tg_arns,
        "TargetGroups", tg_not_found,
    )
    missing["targetGroups"] += gone
    known = {tg.get("TargetGroupName") for tg in tgs}
    more, gone = describe_batched(
        "target groups by name", "elbv2", "describe-target-groups", "--names",
        [n for n in tg_names if n not in known], "TargetGroups", tg_not_found,
    )
    tgs = by_key(tgs + more, "TargetGroupArn")
    missing["targetGroupNames"] += gone

    arns = [tg["TargetGroupArn"] for tg in tgs]
    health, gone = per_resource(
        "target health", "elbv2", "describe-target-health", "--target-group-arn", arns, tg_not_found
    )
    attributes, gone2 = per_resource(
        "target group attributes", "elbv2", "describe-target-group-attributes", "--target-group-arn",
        [a for a in arns if a not in gone], tg_not_found,
    )
    # Deleted between two calls: as missing as one never found.
    vanished = set(gone) | set(gone2)
    missing["targetGroups"] += sorted(vanished)
    tgs = [tg for tg in tgs if tg["TargetGroupArn"] not in vanished]
    health = {k: v for k, v in health.items() if k not in vanished}

    lb_arns = unique(lb for tg in tgs for lb in tg.get("LoadBalancerArns") or [])
    lbs, gone = describe_batched(
        "load balancers", "elbv2", "describe-load-balancers", "--load-balancer-arns", lb_arns,
        "LoadBalancers", lb_not_found,
    )
    missing["loadBalancers"] += gone
    lbs = by_key(lbs, "LoadBalancerArn")
    lb_arns = [lb["LoadBalancerArn"] for lb in lbs]
    listeners, gone = per_resource(
        "listeners", "elbv2", "describe-listeners", "--load-balancer-arn", lb_arns, lb_not_found
    )
    lb_attributes, gone2 = per_resource(
        "load balancer attributes", "elbv2", "describe-load-balancer-attributes", "--load-balancer-arn",
        [a for a in lb_arns if a not in gone], lb_not_found,
    )
    vanished = set(gone) | set(gone2)
    missing["loadBalancers"] += sorted(vanished)
    lbs = [lb for lb in lbs if lb["LoadBalancerArn"] not in vanished]

    # Everything else is read per VPC with filters, which never fail for a vanished resource.
    vpcs = unique([tg.get("VpcId") for tg in tgs] + [lb.get("VpcId") for lb in lbs])
    ec2 = [
        ("DescribeVpcs", "describe-vpcs", "Vpcs", "VpcId"),
        ("DescribeSubnets", "describe-subnets", "Subnets", "SubnetId"),
        ("DescribeNetworkInterfaces", "describe-network-interfaces", "NetworkInterfaces", "NetworkInterfaceId"),
        ("DescribeInstances", "describe-instances", "Reservations", "ReservationId"),
        ("DescribeSecurityGroups", "describe-security-groups", "SecurityGroups", "GroupId"),
        ("DescribeNetworkAcls", "describe-network-acls", "NetworkAcls", "NetworkAclId"),
    ]
    jobs, slots = [], []
    for op, command, field, key in ec2:
        for group in chunks(vpcs, FILTER_BATCH):
            values = "Name=vpc-id,Values=" + ",".join(group)
            jobs.append(lambda command=command, field=field, values=values: call(
                "ec2", command, "--filters", values).get(field) or [])
            slots.append(op)
    out = {op: {field: []} for op, _, field, _ in ec2}
    for op, items in zip(slots, run_stage("VPC networking", jobs)):
        out[op][next(iter(out[op]))] += items
    for op, _, field, key in ec2:
        out[op][field] = by_key(out[op][field], key)

    prefix_lists = unique(
        pl.get("PrefixListId")
        for sg in out["DescribeSecurityGroups"]["SecurityGroups"]
        for perm in (sg.get("IpPermissions") or []) + (sg.get("IpPermissionsEgress") or [])
        for pl in perm.get("PrefixListIds") or []
    )
    entries, gone = per_resource(
        "prefix lists", "ec2", "get-managed-prefix-list-entries", "--prefix-list-id", prefix_lists,
        ("InvalidPrefixListID.NotFound", "InvalidPrefixListId.NotFound"),
    )
    missing["prefixLists"] += gone

    # PrivateLink: the endpoint services in front of these load balancers (the call cannot filter
    # by load balancer). Without the permission the key is left out: the analysis then says
    # `unknown` only where PrivateLink would decide.
    if lbs:
        def endpoint_services():
            try:
                return call("ec2", "describe-vpc-endpoint-service-configurations").get("ServiceConfigurations") or []
            except AwsError as exc:
                if exc.code not in ("UnauthorizedOperation", "AccessDenied"):
                    raise
                say("endpoint services not read ({}); PrivateLink is judged unknown".format(exc.code))
                return None
        services = run_stage("endpoint services", [endpoint_services])[0]
        if services is not None:
            out["DescribeVpcEndpointServiceConfigurations"] = {"ServiceConfigurations": [
                s for s in services if set(s.get("NetworkLoadBalancerArns") or []) & set(lb_arns)]}

    out.update({
        "DescribeTargetGroups": {"TargetGroups": tgs},
        "DescribeTargetHealth": health,
        "DescribeTargetGroupAttributes": {k: v for k, v in attributes.items() if k not in vanished},
        "DescribeLoadBalancers": {"LoadBalancers": lbs},
        "DescribeListeners": {"Listeners": [l for a in lb_arns if a in listeners
                                            for l in listeners[a].get("Listeners") or []]},
        "DescribeLoadBalancerAttributes": {k: v for k, v in lb_attributes.items() if k not in vanished},
        "GetManagedPrefixListEntries": entries,
    })
    with open(os.path.join(bundle, "aws.json"), "w") as fh:
        json.dump(out, fh, indent=1, sort_keys=True)

    meta = {
        "cluster": cluster,
        "collectedAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "missing": {k: unique(v) for k, v in missing.items()},
    }
    if client_cidrs:
        meta["clientCidrs"] = client_cidrs
    # KEY=VALUE,... (checked by the shell part), as the controller's flag reads it.
    tags = dict(item.split("=", 1) for item in eni_sg_tags.split(",") if item)
    if tags:
        meta["serviceTargetEniSecurityGroupTags"] = {k.strip(): v.strip() for k, v in tags.items()}
    with open(os.path.join(bundle, "bundle.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
    for what, ids in meta["missing"].items():
        if ids:
            say("not found ({}): {}".format(what, ", ".join(ids)))
    say("{} AWS calls in {:.1f} s".format(calls["n"], time.monotonic() - started))


try:
    main()
except Failed as exc:
    say(str(exc))
    sys.exit(1)
PY

tar -C "$work" -czf "$out" "$stem"
echo "collect-bundle: wrote $out" >&2
echo "$out"
