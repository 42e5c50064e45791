#!/usr/bin/env bash
# An emulated cluster on one machine: k hosts as Linux network namespaces joined by a bridge, each link shaped
# with a token-bucket rate limit, and Open MPI launched across them over TCP (docs/cluster.md).
#
#   scripts/cluster.sh up [--hosts K] [--rate 1gbit|100mbit|unlimited]   make (or re-shape) the cluster
#   scripts/cluster.sh run [--hosts K] [--ranks-per-host R] -- PROGRAM [ARGS...]
#                                                                        mpirun PROGRAM on K hosts x R ranks
#   scripts/cluster.sh counters                                          bytes each host sent and received
#   scripts/cluster.sh status                                            what exists now
#   scripts/cluster.sh down                                              remove everything `up` made
#
# Layout: a namespace `${PREFIX}-br` holds the bridge; host i is the namespace `${PREFIX}-h<i>` with one interface
# eth0 (address ${SUBNET}.<10+i>/24) whose peer is a port of the bridge; a veth from the root namespace
# (${SUBNET}.1) into the bridge lets mpirun's daemons call back. No route leaves the subnet: traffic stays in
# these namespaces. Each host's daemons also get a hostname of their own (a UTS namespace named like the host). Each host's link is shaped in both directions (the host's eth0 and its bridge port) with
# `tc qdisc ... tbf` (netem is not available on these kernels, so no added delay). Inside a host, ranks use
# shared memory (Open MPI's vader); between hosts, TCP.
#
# Needs root and iproute2 (`ip`, `tc`); without them it says so and exits 0 (a skip, for CI machines that
# cannot make namespaces). Idempotent: `up` on an existing cluster re-shapes its links; it refuses to touch
# namespaces or links it did not create (they are recorded in ${STATE}). A failure during `up` removes what it
# made. Environment: TETHER_CLUSTER_PREFIX (default tether-c), TETHER_CLUSTER_SUBNET (default 10.213.0, a
# private test range), TETHER_CLUSTER_STATE (default /run/tether-cluster).
set -euo pipefail

PREFIX=${TETHER_CLUSTER_PREFIX:-tether-c}
SUBNET=${TETHER_CLUSTER_SUBNET:-10.213.0}
STATE=${TETHER_CLUSTER_STATE:-/run/tether-cluster}
BRNS="${PREFIX}-br"
# Interface names made in the root namespace carry a tag of the prefix (names are at most 15 bytes), so that two
# clusters with different prefixes (the smoke test's next to a study's) never meet there.
IFTAG=$(printf '%s' "$PREFIX" | cksum | awk '{ printf "%04x", $1 % 65536 }')
ROOTIF="tc${IFTAG}r"   # the root namespace's leg into the bridge (its peer ${ROOTIF}b is a bridge port)
HOSTIF="tc${IFTAG}h"   # host i's veth is made as ${HOSTIF}i (renamed eth0 in the host) with the port ${HOSTIF}ib
MAX_HOSTS=16

say() { echo "cluster: $*"; }
die() { echo "cluster: $*" >&2; exit 2; }

# Rights and tools: without them this is a skip, not a failure.
can_run() {
  if [[ $(id -u) -ne 0 ]]; then say "skipped: needs root to make network namespaces"; return 1; fi
  for t in ip tc; do
    command -v "$t" >/dev/null || { say "skipped: '$t' not found (Debian: apt-get install iproute2)"; return 1; }
  done
  if ! ip netns add "${PREFIX}-probe" 2>/dev/null; then say "skipped: cannot make network namespaces here"; return 1; fi
  ip netns del "${PREFIX}-probe"
  return 0
}

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qx "$1"; }
link_exists() { ip link show "$1" >/dev/null 2>&1; }

# Rate: 1gbit, 100mbit, 10gbit, 250kbit...; "unlimited" for no shaping.
check_rate() {
  [[ "$1" == unlimited || "$1" =~ ^[0-9]+(\.[0-9]+)?(kbit|mbit|gbit)$ ]] ||
    die "--rate must be like 100mbit, 1gbit or unlimited, got '$1'"
}

# The token bucket for a rate: a burst of about 2 ms of traffic (at least 32 KiB), up to 50 ms of queue.
shape() {  # shape <netns> <dev> <rate>
  local ns=$1 dev=$2 rate=$3
  ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
  [[ "$rate" == unlimited ]] && return 0
  local bits=${rate%bit} mult=1
  case "$bits" in *k) mult=1000 ;; *m) mult=1000000 ;; *g) mult=1000000000 ;; esac
  local num=${bits%[kmg]}
  local burst
  burst=$(awk -v n="$num" -v m="$mult" 'BEGIN { b = n * m / 8 / 500; if (b < 32768) b = 32768; printf "%d", b }')
  ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate "$rate" burst "$burst" latency 50ms
}

record() { echo "$1" >>"$STATE/created"; }
created() { [[ -f "$STATE/created" ]] && grep -qx "$1" "$STATE/created"; }

cleanup_created() {
  [[ -f "$STATE/created" ]] || return 0
  # Reverse order: links, then host namespaces, then the bridge's.
  tac "$STATE/created" | while read -r item; do
    case "$item" in
      ns:*) ns_exists "${item#ns:}" && ip netns del "${item#ns:}" || true ;;
      link:*) link_exists "${item#link:}" && ip link del "${item#link:}" || true ;;
    esac
  done
  rm -rf "$STATE"
}

cmd_up() {
  local hosts=2 rate=1gbit
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --hosts) hosts=${2:-}; shift 2 ;;
      --rate) rate=${2:-}; shift 2 ;;
      *) die "up: unknown option '$1'" ;;
    esac
  done
  [[ "$hosts" =~ ^[0-9]+$ && "$hosts" -ge 1 && "$hosts" -le $MAX_HOSTS ]] ||
    die "--hosts must be a whole number in [1, $MAX_HOSTS], got '$hosts'"
  check_rate "$rate"
  can_run || exit 0

  if [[ -f "$STATE/config" ]]; then
    # shellcheck disable=SC1091
    source "$STATE/config"
    if [[ "${CLUSTER_HOSTS:-}" == "$hosts" ]] && ns_exists "$BRNS"; then
      for ((i = 0; i < hosts; ++i)); do
        shape "${PREFIX}-h$i" eth0 "$rate"
        shape "$BRNS" "${HOSTIF}${i}b" "$rate"
      done
      echo "CLUSTER_HOSTS=$hosts" >"$STATE/config"
      echo "CLUSTER_RATE=$rate" >>"$STATE/config"
      say "up: $hosts hosts, links re-shaped to $rate"
      return 0
    fi
    say "up: a cluster of another shape (or a crashed run's leftovers) exists: removing it first"
    cleanup_created
  fi
  # Refuse to touch what is not ours.
  for n in "$BRNS" $(for ((i = 0; i < hosts; ++i)); do echo "${PREFIX}-h$i"; done); do
    ns_exists "$n" && die "a network namespace '$n' exists that this script did not make (no $STATE): remove it or set TETHER_CLUSTER_PREFIX"
  done
  link_exists "$ROOTIF" && die "an interface '$ROOTIF' exists that this script did not make: remove it first"

  mkdir -p "$STATE"
  : >"$STATE/created"
  trap 'echo "cluster: up failed; removing what it made" >&2; cleanup_created' ERR

  ip netns add "$BRNS" && record "ns:$BRNS"
  ip netns exec "$BRNS" ip link set lo up
  ip netns exec "$BRNS" ip link add br0 type bridge
  ip netns exec "$BRNS" ip link set br0 up
  # The root namespace's way in (mpirun and its daemons' control channel).
  ip link add $ROOTIF type veth peer name ${ROOTIF}b && record "link:$ROOTIF"
  ip link set ${ROOTIF}b netns "$BRNS"
  ip addr add "$SUBNET.1/24" dev $ROOTIF
  ip link set $ROOTIF up
  ip netns exec "$BRNS" ip link set ${ROOTIF}b master br0
  ip netns exec "$BRNS" ip link set ${ROOTIF}b up
  : >"$STATE/hosts"
  for ((i = 0; i < hosts; ++i)); do
    local ns="${PREFIX}-h$i" addr="$SUBNET.$((10 + i))"
    ip netns add "$ns" && record "ns:$ns"
    ip netns exec "$ns" ip link set lo up
    ip link add "${HOSTIF}$i" type veth peer name "${HOSTIF}${i}b"
    ip link set "${HOSTIF}$i" netns "$ns"
    ip link set "${HOSTIF}${i}b" netns "$BRNS"
    ip netns exec "$ns" ip link set "${HOSTIF}$i" name eth0
    ip netns exec "$ns" ip addr add "$addr/24" dev eth0
    ip netns exec "$ns" ip link set eth0 up
    ip netns exec "$BRNS" ip link set "${HOSTIF}${i}b" master br0
    ip netns exec "$BRNS" ip link set "${HOSTIF}${i}b" up
    shape "$ns" eth0 "$rate"
    shape "$BRNS" "${HOSTIF}${i}b" "$rate"
    echo "$addr $ns" >>"$STATE/hosts"
  done
  # The rsh agent Open MPI starts its daemons with: the host's address -> its namespace.
  cat >"$STATE/agent" <<EOF
#!/bin/sh
host="\$1"; shift
ns=\$(awk -v h="\$host" '\$1 == h { print \$2 }' "$STATE/hosts")
[ -n "\$ns" ] || { echo "cluster agent: unknown host \$host" >&2; exit 1; }
# A hostname of its own (a UTS namespace): Open MPI names its shared-memory segments after the host, and the
# hosts share this machine's /dev/shm.
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns && \$*"
EOF
  chmod +x "$STATE/agent"
  echo "CLUSTER_HOSTS=$hosts" >"$STATE/config"
  echo "CLUSTER_RATE=$rate" >>"$STATE/config"
  trap - ERR
  # Every host reaches every other through the bridge (checked where ping is installed).
  if command -v ping >/dev/null; then
    for ((i = 1; i < hosts; ++i)); do
      ip netns exec "${PREFIX}-h0" ping -c 1 -W 2 "$SUBNET.$((10 + i))" >/dev/null ||
        { cleanup_created; die "up: host 0 cannot reach host $i"; }
    done
  fi
  say "up: $hosts hosts (${SUBNET}.10-$((9 + hosts))), links at $rate, state in $STATE"
}

cmd_run() {
  local hosts="" per_host=1
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --hosts) hosts=${2:-}; shift 2 ;;
      --ranks-per-host) per_host=${2:-}; shift 2 ;;
      --) shift; break ;;
      *) die "run: unknown option '$1' (the program goes after --)" ;;
    esac
  done
  [[ $# -gt 0 ]] || die "run: no program (scripts/cluster.sh run [--hosts K] [--ranks-per-host R] -- PROGRAM ARGS)"
  can_run || exit 0
  [[ -f "$STATE/config" ]] || die "run: no cluster (scripts/cluster.sh up first)"
  # shellcheck disable=SC1091
  source "$STATE/config"
  hosts=${hosts:-$CLUSTER_HOSTS}
  [[ "$hosts" =~ ^[0-9]+$ && "$hosts" -ge 1 && "$hosts" -le "$CLUSTER_HOSTS" ]] ||
    die "--hosts must be in [1, $CLUSTER_HOSTS] (the cluster's size), got '$hosts'"
  [[ "$per_host" =~ ^[0-9]+$ && "$per_host" -ge 1 && "$per_host" -le 64 ]] ||
    die "--ranks-per-host must be in [1, 64], got '$per_host'"
  local hostfile="$STATE/hostfile.$$"
  head -n "$hosts" "$STATE/hosts" | awk -v r="$per_host" '{ print $1 " slots=" r }' >"$hostfile"
  local rc=0
  PMIX_MCA_gds=hash mpirun --allow-run-as-root --oversubscribe \
    --hostfile "$hostfile" -np $((hosts * per_host)) --map-by "ppr:${per_host}:node" \
    --mca plm_rsh_agent "$STATE/agent" --mca plm_rsh_no_tree_spawn 1 \
    --mca btl tcp,vader,self --mca btl_tcp_if_include "$SUBNET.0/24" --mca oob_tcp_if_include "$SUBNET.0/24" \
    -x PMIX_MCA_gds=hash -x OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
    "$@" || rc=$?
  rm -f "$hostfile"
  return $rc
}

cmd_counters() {
  can_run || exit 0
  [[ -f "$STATE/hosts" ]] || die "counters: no cluster"
  while read -r addr ns; do
    echo "$ns $addr tx_bytes=$(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/tx_bytes)" \
      "rx_bytes=$(ip netns exec "$ns" cat /sys/class/net/eth0/statistics/rx_bytes)"
  done <"$STATE/hosts"
}

cmd_status() {
  if [[ -f "$STATE/config" ]]; then
    cat "$STATE/config"
    cat "$STATE/hosts"
  else
    say "no cluster"
  fi
}

cmd_down() {
  [[ $(id -u) -eq 0 ]] || { say "skipped: needs root"; exit 0; }
  if [[ ! -f "$STATE/created" ]]; then say "down: nothing to remove"; return 0; fi
  cleanup_created
  say "down: removed"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  run) shift; cmd_run "$@" ;;
  counters) shift; cmd_counters ;;
  status) shift; cmd_status ;;
  down) shift; cmd_down ;;
  *) sed -n '2,24p' "$0"; exit 2 ;;
esac
