#!/usr/bin/env bash
# The emulated cluster's smoke test (CTest `cluster_smoke`, label cluster): 2 hosts linked at 100 Mbit/s by
# scripts/cluster.sh, synchronous LSGD across them (one rank per host) gives the same parameters, bit for bit,
# as the same run on one host, and its bytes crossed the hosts' links (each host's interface counters grew by
# at least the payload tether counted for its rank); SwarmSGD with 8-bit messages across them learns and its
# exchanges crossed the links the same way. Skipped with a message (exit 0, "SKIP") where network
# namespaces cannot be made. Uses a prefix, a subnet and a state folder of its own, and removes them on exit; a
# second cluster with another prefix comes up and goes down beside it (their root-namespace links once shared a
# name, so a second cluster, or this test next to a running study, failed).
#   tests/cluster/smoke.sh <mpiexec> <mpi_lsgd> <mpi_swarm>
set -euo pipefail
MPIEXEC=$1
LSGD=$2
SWARM=$3
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TETHER_CLUSTER_PREFIX=tether-t TETHER_CLUSTER_SUBNET=10.214.0 TETHER_CLUSTER_STATE=/run/tether-cluster-test
cluster="$root/scripts/cluster.sh"

out=$(bash "$cluster" up --hosts 2 --rate 100mbit)
echo "$out"
if grep -q "skipped" <<<"$out"; then echo "SKIP: $out"; exit 0; fi
trap 'bash "$cluster" down' EXIT

second=(env TETHER_CLUSTER_PREFIX=tether-u TETHER_CLUSTER_SUBNET=10.216.0 TETHER_CLUSTER_STATE=/run/tether-cluster-test2)
if ! "${second[@]}" bash "$cluster" up --hosts 1 --rate 1gbit; then
  echo "FAIL: a second cluster (another prefix) could not come up beside the first"
  exit 1
fi
"${second[@]}" bash "$cluster" down

args=(--steps 400 --period 8 --timeout 30)
local_run=$("$MPIEXEC" --allow-run-as-root --oversubscribe -np 2 "$LSGD" "${args[@]}")
echo "$local_run"
before=$(bash "$cluster" counters)
cluster_run=$(bash "$cluster" run --hosts 2 -- "$LSGD" "${args[@]}")
after=$(bash "$cluster" counters)
echo "$cluster_run"
echo "$before"
echo "$after"

sums() { awk '$1 ~ /^[0-9]+$/ && NF >= 9 { print $1, $NF }' <<<"$1"; }
[[ -n "$(sums "$local_run")" ]] || { echo "FAIL: no checksums in the local run's output"; exit 1; }
if [[ "$(sums "$local_run")" != "$(sums "$cluster_run")" ]]; then
  echo "FAIL: the run across the cluster differs from the run on one host"
  exit 1
fi
# Each host's link carried at least the payload tether counted as sent by its rank (the last but one column).
check_crossed() {
  local run=$1 before=$2 after=$3 what=$4
  for r in 0 1; do
    sent=$(awk -v r=$r '$1 == r && NF >= 8 { print $(NF - 1) }' <<<"$run")
    tx0=$(awk -v h="tether-t-h$r" '$1 == h { sub("tx_bytes=", "", $3); print $3 }' <<<"$before")
    tx1=$(awk -v h="tether-t-h$r" '$1 == h { sub("tx_bytes=", "", $3); print $3 }' <<<"$after")
    crossed=$((tx1 - tx0))
    echo "$what, host $r: tether counted $sent payload bytes sent, its link carried $crossed"
    if [[ -z "$sent" || "$crossed" -lt "$sent" || "$sent" -le 0 ]]; then
      echo "FAIL: $what: host $r's link carried fewer bytes ($crossed) than the payload tether sent ($sent)"
      exit 1
    fi
  done
}
check_crossed "$cluster_run" "$before" "$after" "LSGD"

before=$(bash "$cluster" counters)
swarm_run=$(bash "$cluster" run --hosts 2 -- "$SWARM" --steps 400 --period 8 --bits 8 --timeout 30 --check)
after=$(bash "$cluster" counters)
echo "$swarm_run"
check_crossed "$swarm_run" "$before" "$after" "SwarmSGD 8-bit"
echo "cluster_smoke: passed"
