#!/usr/bin/env bash
# Long-form test, run by hand (see docs/reach.md): thirty daemons on
# loopback, ten of them dial-only (`node start --no-listen`, as behind NAT).
#
#   tests/long/reach-30.sh
#
# It builds this checkout, makes a community of 30 organisations (node 1 is
# the steward and the bootstrap node; nodes 21-30 listen on nothing), starts
# every daemon with node 1 as its only bootstrap address, then checks:
#   - an entry published on node 21 visible only to node 30's organisation
#     (both dial-only) reaches node 30, through a relay or a hole punch
#     (`peers` on node 21 says how it reaches node 30), and no other home
#     holds a byte of its text (the relays included);
#   - with node 1 killed for good and nodes 2, 3 and 21 restarted, those
#     three are connected to members again (they find them through the
#     signed address records members share), and a second restricted entry
#     from node 21 reaches node 30;
#   - an entry for the whole community from node 25 (dial-only) reaches
#     every running node.
# MIN_PEERS=4 MAX_PEERS=8 sets network.min_peers and network.max_peers on
# every node (the defaults, 8 and 32, never close a connection among 30),
# so the hub closes most of the connections it gets and the members must
# find each other; it then also checks no node keeps more than MAX_PEERS
# members it did not need.
# Exit status 0 when every check holds. KEEP=1 keeps the scratch folder.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

step "building this checkout"
(cd "$here" && cargo build -q -p convene --locked)
bin="${CARGO_TARGET_DIR:-$here/target}/debug/convene"
n=30
dial_only_from=21
home() { echo "$work/n$1"; }
cv() { local i=$1; shift; "$bin" --home "$(home "$i")" "$@"; }

# Waits up to $1 seconds for a command to succeed.
until_ok() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}

step "a community of $n organisations"
cv 1 init --org "Org 1" --sector nhs-trust >/dev/null
cv 1 community create "Thirty" >/dev/null
port=$((41000 + RANDOM % 2000))
start() {
    local i=$1
    local listen=(--listen "/ip4/127.0.0.1/tcp/$((port + i))")
    [ "$i" -ge $dial_only_from ] && listen=(--no-listen)
    local boot=()
    [ "$i" -ne 1 ] && boot=(--bootstrap "$hub")
    RUST_LOG=convene_node=info cv "$i" node start --no-mdns --no-web "${listen[@]}" "${boot[@]}" \
        >"$(home "$i")/out" 2>>"$(home "$i")/log" &
    pids[$i]=$!
}
bounds() {
    [ -n "${MIN_PEERS:-}" ] && cv "$1" config set network.min_peers "$MIN_PEERS" >/dev/null
    [ -n "${MAX_PEERS:-}" ] && cv "$1" config set network.max_peers "$MAX_PEERS" >/dev/null
    true
}
bounds 1
mkdir -p "$(home 1)"
hub="/ip4/127.0.0.1/tcp/$((port + 1))/p2p/$(cv 1 id | tr -d '\n')"
start 1
until_ok 20 grep -q '^listening on ' "$(home 1)/out" || fail "node 1 did not start"
for i in $(seq 2 $n); do
    cv "$i" init --org "Org $i" --sector vcse >/dev/null
    bounds "$i"
    code=$(cv 1 invite --expires 1d)
    # Joins from one address are budgeted (strangers' joins, one every two
    # seconds past the first few, and an address that keeps asking is
    # banned for a while): all thirty come from this machine, so pace them.
    until_ok 180 cv "$i" join "$code" --peer "$hub" || fail "node $i could not join"
    sleep 2.5
done
# Everyone learns every claim from the hub.
for i in $(seq 2 $n); do cv "$i" sync --once --peer "$hub" >/dev/null; done

step "starting $((n - 1)) more daemons ($((n - dial_only_from + 1)) dial-only)"
for i in $(seq 2 $n); do start "$i"; done
sleep 1

step "an entry from node $dial_only_from visible only to node $n's organisation"
title="Dial-only to dial-only: frailty huddles"
id=$(cv $dial_only_from publish learning --title "$title" --summary "Only for two." --visibility "Org $n" | tr -d '\n')
has() { cv "$1" list --all --json | grep -q "\"$2\""; }
until_ok 90 has $n "$id" || fail "the entry did not reach node $n"
node_n=$(cv $n id | tr -d '\n')
reach=$(cv $dial_only_from peers --json | grep "\"$node_n\"" | sed 's/.*"reached":"\([a-z-]*\)".*/\1/')
echo "node $dial_only_from reaches node $n: $reach"
case "$reach" in relayed|hole-punched) ;; *) fail "node $dial_only_from reaches node $n as '$reach'";; esac
for i in $(seq 1 $((n - 1))); do
    [ "$i" -eq $dial_only_from ] && continue
    if grep -rqa "$title" "$(home "$i")"; then fail "node $i's home holds the restricted text"; fi
done
echo "no other home holds a byte of it"

step "node 1 killed for good; nodes 2, 3 and $dial_only_from restarted"
kill -9 "${pids[1]}"
for i in 2 3 $dial_only_from; do kill "${pids[$i]}"; wait "${pids[$i]}" 2>/dev/null || true; done
for i in 2 3 $dial_only_from; do start "$i"; done
connected() { cv "$1" peers --json | grep -q '"reached":"\(direct\|relayed\|hole-punched\)"'; }
for i in 2 3 $dial_only_from; do
    until_ok 60 connected "$i" || fail "node $i found no member without the bootstrap node"
    echo "node $i: $(cv "$i" peers --json | grep -c '"connected":true') members connected"
done
title2="Found again without the bootstrap node"
id2=$(cv $dial_only_from publish learning --title "$title2" --summary "Still only for two." --visibility "Org $n" | tr -d '\n')
until_ok 90 has $n "$id2" || fail "the second entry did not reach node $n"
for i in $(seq 2 $((n - 1))); do
    [ "$i" -eq $dial_only_from ] && continue
    if grep -rqa "$title2" "$(home "$i")"; then fail "node $i's home holds the second restricted text"; fi
done

step "an entry for everyone from node 25 (dial-only)"
id3=$(cv 25 publish learning --title "For the whole community" --summary "Everyone." | tr -d '\n')
for i in $(seq 2 $n); do
    until_ok 90 has "$i" "$id3" || fail "the community entry did not reach node $i"
done
echo "every running node has it"
if [ -n "${MAX_PEERS:-}" ]; then
    # Connections past the bound close after a 20 s grace; the audiences
    # of restricted entries come on top.
    members_of() { cv "$1" peers --json | grep -c '"connected":true' || true; }
    within() {
        for i in $(seq 2 $n); do
            [ "$(members_of "$i")" -le $((MAX_PEERS + 2)) ] || return 1
        done
    }
    until_ok 90 within || fail "a node keeps more than max_peers ($MAX_PEERS) members connected"
    for i in $(seq 2 $n); do echo "node $i: $(members_of "$i") members connected"; done
fi
echo
echo "every check held"
