#!/usr/bin/env bash
# Long-form test, run by hand (see docs/upgrading.md): the previous release
# and this one in one community on loopback.
#
#   tests/long/mixed-release.sh [PREVIOUS_REVISION]
#
# It builds PREVIOUS_REVISION (default: the last commit before questions,
# events and ideas) in a scratch worktree beside this checkout, and this
# checkout as it is, then runs:
#   - a steward's node on this release, with its daemon (the hub);
#   - a member on the previous release, and a member on this release.
# It checks what the README promises: entries of the kinds both know travel
# both ways; the new kinds (an event, a question) reach the member on this
# release through the hub and are refused, not stored, by the member on the
# previous release, whose log says so; nothing else breaks.
# Exit status 0 when every check holds. Set KEEP=1 to keep the scratch
# folder for a look; set OLD_BIN to a previous release's `convene` binary to
# skip building it.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
prev=${1:-c83578f}
work=$(mktemp -d)
cleanup() {
    [ -n "${hub_pid:-}" ] && kill "$hub_pid" 2>/dev/null || true
    git -C "$here" worktree remove --force "$work/prev" 2>/dev/null || true
    [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

if [ -n "${OLD_BIN:-}" ]; then
    # A previous release built already (its `convene` binary).
    old="$OLD_BIN"
else
    step "building the previous release ($prev)"
    git -C "$here" worktree add --detach "$work/prev" "$prev" >/dev/null
    (cd "$work/prev" && CARGO_TARGET_DIR="$work/target-prev" cargo build -q -p convene --locked)
    old="$work/target-prev/debug/convene"
fi
step "building this checkout"
(cd "$here" && cargo build -q -p convene --locked)
new="${CARGO_TARGET_DIR:-$here/target}/debug/convene"
"$old" --version
"$new" --version

steward="$work/steward" older="$work/older" newer="$work/newer"
"$new" --home "$steward" init --org "Steward Trust" --sector nhs-trust >/dev/null
"$old" --home "$older" init --org "Older Council" --sector council >/dev/null
"$new" --home "$newer" init --org "Newer Carers Group" --sector vcse >/dev/null
"$new" --home "$steward" community create "Mixed" >/dev/null

step "the steward's daemon (this release) is the hub"
"$new" --home "$steward" node start --no-mdns --listen /ip4/127.0.0.1/tcp/0 \
    >"$work/hub.out" 2>"$work/hub.log" &
hub_pid=$!
for _ in $(seq 1 200); do
    grep -q '^listening on ' "$work/hub.out" 2>/dev/null && break
    sleep 0.1
done
hub=$(grep -m1 '^listening on ' "$work/hub.out" | cut -d' ' -f3)
[ -n "$hub" ] || fail "the hub did not start"

step "both members join with invite codes"
"$old" --home "$older" join "$("$new" --home "$steward" invite --expires 1d)" >/dev/null
"$new" --home "$newer" join "$("$new" --home "$steward" invite --expires 1d)" >/dev/null
sync() { "$1" --home "$2" sync --once --peer "$hub" >/dev/null; }
sync "$old" "$older"
sync "$new" "$newer"

step "learning travels both ways between the releases"
from_old=$("$old" --home "$older" publish learning --title "Warm spaces" --summary "What we learned.")
from_new=$("$new" --home "$newer" publish learning --title "Community calls" --summary "What we learned.")
sync "$old" "$older"
sync "$new" "$newer"
sync "$old" "$older"
"$new" --home "$newer" show "$from_old" >/dev/null || fail "this release lacks the older member's learning"
"$old" --home "$older" show "$from_new" >/dev/null || fail "the previous release lacks the newer member's learning"

step "an event and a question from this release"
event=$("$new" --home "$newer" publish event --title "Summit" \
    --starts "2030-03-04 09:30" --ends "2030-03-04 13:00")
question=$("$new" --home "$newer" ask "$from_old" --text "How many came?")
sync "$new" "$newer"
sync "$old" "$older"
"$new" --home "$steward" show "$event" >/dev/null || fail "the hub lacks the event"
"$new" --home "$steward" show "$question" >/dev/null || fail "the hub lacks the question"
if "$old" --home "$older" show "$event" >/dev/null 2>&1; then
    fail "the previous release shows an event (it was expected to refuse it)"
fi
echo "the previous release refuses the event and the question (expected):"
"$old" --home "$older" log --json | grep -c '"rejected' || true

step "the previous release still publishes, and this release still receives"
late=$("$old" --home "$older" publish learning --title "Late lesson" --summary "Still here.")
sync "$old" "$older"
sync "$new" "$newer"
"$new" --home "$newer" show "$late" >/dev/null || fail "a later entry from the previous release did not arrive"

step "every check held"
