#!/usr/bin/env bash
# Collect a Binding Health bundle (DESIGN.md "Bundles") for one cluster with kubectl and the AWS CLI,
# then tar it, so `python manage.py analyze BUNDLE.tar.gz` can judge it offline.
#
# Usage: scripts/collect-bundle.sh [-o OUT.tar.gz] [-c CLUSTER] [--context CTX] [--region REGION]
#                                  [--client-cidr CIDR]... [--eni-sg-tags KEY=VALUE,...]
#
# --eni-sg-tags: the controller's --service-target-eni-security-group-tags, if it runs with one
# (same KEY=VALUE,... syntax); it decides which security group the controller writes rules to.
#
# Read-only: it runs only `kubectl get` and `aws ... describe-*`. AWS calls are limited to the target
# groups the TargetGroupBindings reference, their load balancers, and those load balancers' VPCs.
# Needs bash, kubectl, aws (v2) and python3 (to extract ARNs and merge per-ARN responses).
set -euo pipefail

out=""
cluster=""
context=""
region=""
client_cidrs=()
eni_sg_tags=""

die() { echo "collect-bundle: $*" >&2; exit 2; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    -o|--output) out="${2:?}"; shift 2 ;;
    -c|--cluster) cluster="${2:?}"; shift 2 ;;
    --context) context="${2:?}"; shift 2 ;;
    --region) region="${2:?}"; shift 2 ;;
    --client-cidr) client_cidrs+=("${2:?}"); shift 2 ;;
    --eni-sg-tags) eni_sg_tags="${2:?}"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument: $1" ;;
  esac
done

command -v kubectl >/dev/null || die "kubectl not found on PATH"
command -v aws >/dev/null || die "aws CLI not found on PATH"
command -v python3 >/dev/null || die "python3 not found on PATH"

kube=(kubectl)
[[ -n "$context" ]] && kube+=(--context "$context")
awscli=(aws --output json)
[[ -n "$region" ]] && awscli+=(--region "$region")

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
raw="$work/raw"
mkdir -p "$bundle" "$raw"

echo "collect-bundle: reading Kubernetes objects" >&2
"${kube[@]}" get targetgroupbindings,services,endpointslices,pods,nodes,events -A -o yaml >"$bundle/kubernetes.yaml"
"${kube[@]}" get targetgroupbindings -A -o json >"$raw/tgbs.json"

# call OPERATION KEY-ARN|- aws-args... : store one response; KEY "-" means a list-shaped call whose
# pages are merged, anything else is the ARN a per-resource response is keyed by.
n=0
call() {
  local op="$1" key="$2"
  shift 2
  n=$((n + 1))
  mkdir -p "$raw/$op"
  "${awscli[@]}" "$@" >"$raw/$op/$n.json"
  printf '%s' "$key" >"$raw/$op/$n.key"
}

# py SCRIPT ARGS... : run a small python3 helper (kept inline so the script is one file).
py() { python3 -c "$1" "${@:2}"; }

tg_arns="$(py '
import json, sys
doc = json.load(open(sys.argv[1]))
seen = []
for item in doc.get("items") or []:
    spec = item.get("spec") or {}
    arn = spec.get("targetGroupARN")
    if isinstance(arn, str) and arn and arn not in seen:
        seen.append(arn)
print("\n".join(seen))
' "$raw/tgbs.json")"
tg_names="$(py '
import json, sys
doc = json.load(open(sys.argv[1]))
for item in doc.get("items") or []:
    spec = item.get("spec") or {}
    if not spec.get("targetGroupARN") and isinstance(spec.get("targetGroupName"), str):
        print(spec["targetGroupName"])
' "$raw/tgbs.json")"

echo "collect-bundle: reading target groups" >&2
mapfile -t arns < <(printf '%s\n' "$tg_arns" | sed '/^$/d')
mapfile -t names < <(printf '%s\n' "$tg_names" | sed '/^$/d' | sort -u)
# DescribeTargetGroups takes at most 20 ARNs per call.
for ((i = 0; i < ${#arns[@]}; i += 20)); do
  call DescribeTargetGroups - elbv2 describe-target-groups --target-group-arns "${arns[@]:i:20}"
done
for name in "${names[@]}"; do
  call DescribeTargetGroups - elbv2 describe-target-groups --names "$name" || true
done

merged_tgs="$(py '
import glob, json, sys
seen = {}
for path in sorted(glob.glob(sys.argv[1] + "/DescribeTargetGroups/*.json")):
    for tg in json.load(open(path)).get("TargetGroups") or []:
        seen.setdefault(tg.get("TargetGroupArn"), tg)
for tg in seen.values():
    print("TG", tg.get("TargetGroupArn"))
    for lb in tg.get("LoadBalancerArns") or []:
        print("LB", lb)
    if tg.get("VpcId"):
        print("VPC", tg["VpcId"])
' "$raw" | sort -u)"
mapfile -t all_tgs < <(awk '$1 == "TG" {print $2}' <<<"$merged_tgs")
mapfile -t lbs < <(awk '$1 == "LB" {print $2}' <<<"$merged_tgs")
mapfile -t vpcs < <(awk '$1 == "VPC" {print $2}' <<<"$merged_tgs")

for tg in "${all_tgs[@]}"; do
  call DescribeTargetHealth "$tg" elbv2 describe-target-health --target-group-arn "$tg"
  call DescribeTargetGroupAttributes "$tg" elbv2 describe-target-group-attributes --target-group-arn "$tg"
done

echo "collect-bundle: reading load balancers and listeners" >&2
for ((i = 0; i < ${#lbs[@]}; i += 20)); do
  call DescribeLoadBalancers - elbv2 describe-load-balancers --load-balancer-arns "${lbs[@]:i:20}"
done
for lb in "${lbs[@]}"; do
  call DescribeListeners - elbv2 describe-listeners --load-balancer-arn "$lb"
  call DescribeLoadBalancerAttributes "$lb" elbv2 describe-load-balancer-attributes --load-balancer-arn "$lb"
done

echo "collect-bundle: reading VPC networking" >&2
if [[ ${#vpcs[@]} -gt 0 ]]; then
  vpc_filter="Name=vpc-id,Values=$(IFS=,; echo "${vpcs[*]}")"
  call DescribeVpcs - ec2 describe-vpcs --vpc-ids "${vpcs[@]}"
  call DescribeSubnets - ec2 describe-subnets --filters "$vpc_filter"
  call DescribeNetworkInterfaces - ec2 describe-network-interfaces --filters "$vpc_filter"
  call DescribeInstances - ec2 describe-instances --filters "$vpc_filter"
  call DescribeSecurityGroups - ec2 describe-security-groups --filters "$vpc_filter"
  call DescribeNetworkAcls - ec2 describe-network-acls --filters "$vpc_filter"
fi

# Merge: list-shaped calls concatenate their list; per-ARN calls become {arn: response}.
py '
import glob, json, os, sys
raw, target = sys.argv[1], sys.argv[2]
LISTS = {
    "DescribeLoadBalancers": "LoadBalancers", "DescribeListeners": "Listeners",
    "DescribeTargetGroups": "TargetGroups", "DescribeNetworkInterfaces": "NetworkInterfaces",
    "DescribeInstances": "Reservations", "DescribeSecurityGroups": "SecurityGroups",
    "DescribeSubnets": "Subnets", "DescribeVpcs": "Vpcs", "DescribeNetworkAcls": "NetworkAcls",
}
merged = {}
for folder in sorted(glob.glob(raw + "/Describe*")):
    op = os.path.basename(folder)
    for path in sorted(glob.glob(folder + "/*.json"), key=lambda p: int(os.path.basename(p)[:-5])):
        text = open(path).read().strip()
        response = json.loads(text) if text else {}
        key = open(path[:-5] + ".key").read()
        if key == "-":
            field = LISTS[op]
            bucket = merged.setdefault(op, {field: []})[field]
            ids = {json.dumps(x, sort_keys=True) for x in bucket}
            bucket.extend(x for x in response.get(field) or [] if json.dumps(x, sort_keys=True) not in ids)
        else:
            response.pop("ResponseMetadata", None)
            merged.setdefault(op, {})[key] = response
json.dump(merged, open(target, "w"), indent=1)
' "$raw" "$bundle/aws.json"

py '
import datetime, json, sys
meta = {"cluster": sys.argv[2],
        "collectedAt": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
tags = {}
for item in filter(None, sys.argv[3].split(",")):
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        sys.exit(f"collect-bundle: --eni-sg-tags: {item!r} is not KEY=VALUE")
    tags[key.strip()] = value.strip()
if tags:
    meta["serviceTargetEniSecurityGroupTags"] = tags
if len(sys.argv) > 4:
    meta["clientCidrs"] = sys.argv[4:]
json.dump(meta, open(sys.argv[1], "w"), indent=1)
' "$bundle/bundle.json" "$cluster" "$eni_sg_tags" "${client_cidrs[@]}"

tar -C "$work" -czf "$out" "$stem"
echo "collect-bundle: wrote $out" >&2
echo "$out"
