#!/usr/bin/env bash
# Sets Millom's Kafka principals' SCRAM passwords and ACLs on a cluster that
# runs an authorizer with allow.everyone.if.no.acl.found=false (compose.yaml:
# docker/kafka-start.sh). Run as the super user admin by the one-shot
# create-topics job (docker/kafka-init.sh), after the topics exist.
# Idempotent: passwords are set again (a changed .env applies on the next
# `up`) and the ACLs below added again (an existing one is kept). An ACL
# removed from this list is not revoked on a running cluster: remove it with
# kafka-acls.sh --remove. `kafka-acls.sh --print` lists the grants.
#
# One principal per service, allowed the topics and consumer groups it uses
# (read from services/*/ and shared/: the topics it consumes, writes, the
# dead-letter twins of what it consumes, millom.replies for request/reply):
#   mno      the operator's event publisher: WRITE millom.subscriber.events only
#   analyst  settlement readers (millomctl settlements tail): READ of
#            millom.settlement.records and millom.settlement.reports only
# tests/integration/test_compose.sh checks this file's `allow` lines.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kafka-principals.sh"

BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka:9092}
BIN=${KAFKA_BIN:-/opt/kafka/bin}

acls=()  # "principal|args..." collected by allow, applied per principal below
# allow <principal> <operation> topic|group <name> [prefixed]
allow() {
  local args=(--operation "$2" "--$3" "$4")
  [ "${5:-}" = prefixed ] && args+=(--resource-pattern-type prefixed)
  acls+=("$1|${args[*]}")
}
# consumes <principal> <group> <topic>...: READ on each topic and the group,
# WRITE on each topic's .dlq (the consumer dead-letters there).
consumes() {
  local who=$1 group=$2; shift 2
  allow "$who" READ group "$group"
  for t in "$@"; do
    allow "$who" READ topic "$t"
    allow "$who" WRITE topic "$t.dlq"
  done
}

# api-edge: requests to the services, answers on millom.replies (its own
# partition, a consumer group per process "rpc-<uuid>").
for t in millom.queries millom.purchase.commands millom.activation.callbacks \
         millom.purchase.lookups millom.consents millom.consent.queries \
         millom.cpid.registrations millom.subscriber.events millom.settlement.queries \
         millom.topup.commands; do
  allow api-edge WRITE topic "$t"
done
allow api-edge READ topic millom.replies
allow api-edge READ group rpc- prefixed

consumes offer-resolver offer-resolver millom.queries millom.purchase.events
allow offer-resolver WRITE topic millom.replies
allow offer-resolver WRITE topic millom.offer.impressions

consumes purchase-executor purchase-executor \
  millom.purchase.commands millom.activation.callbacks millom.purchase.lookups \
  millom.topup.commands
allow purchase-executor WRITE topic millom.purchase.events
allow purchase-executor WRITE topic millom.topup.events
allow purchase-executor WRITE topic millom.replies
allow purchase-executor WRITE topic millom.queries  # cache invalidation after a purchase
allow purchase-executor WRITE topic millom.purchase.changelog
allow purchase-executor READ topic millom.purchase.changelog
allow purchase-executor READ group millom-changelog-follower

consumes notifier notifier millom.subscriber.events millom.consents millom.purchase.events \
  millom.cpid.registrations millom.consent.queries millom.topup.events
allow notifier WRITE topic millom.queries  # offers for rich notifications
allow notifier WRITE topic millom.replies
allow notifier READ topic millom.replies
allow notifier READ group rpc- prefixed
allow notifier WRITE topic millom.notifications.dlq
allow notifier WRITE topic millom.notifier.changelog
allow notifier READ topic millom.notifier.changelog
allow notifier READ group millom-changelog-follower

consumes settlement-reporter settlement-reporter millom.purchase.events millom.offer.impressions
consumes settlement-reporter settlement-reporter-queries millom.settlement.queries
allow settlement-reporter WRITE topic millom.settlement.records
allow settlement-reporter WRITE topic millom.settlement.reports
allow settlement-reporter WRITE topic millom.replies

allow mno WRITE topic millom.subscriber.events

allow analyst READ topic millom.settlement.records
allow analyst READ topic millom.settlement.reports
allow analyst READ group millomctl- prefixed

[ "${1:-}" = --print ] && { printf '%s\n' "${acls[@]}"; exit 0; }
CFG=${KAFKA_COMMAND_CONFIG:?KAFKA_COMMAND_CONFIG (the admin client properties) is required}

kc() { "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CFG" "$@"; }
ka() { "$BIN/kafka-acls.sh" --bootstrap-server "$BOOTSTRAP" --command-config "$CFG" "$@"; }

echo "setting SCRAM passwords"
for p in $MILLOM_KAFKA_PRINCIPALS; do
  pw=$(principal_password "$p")
  kc --alter --entity-type users --entity-name "$p" \
     --add-config "SCRAM-SHA-512=[password=$pw]" >/dev/null
  echo "  $p"
done

echo "setting ACLs"
for p in $MILLOM_KAFKA_PRINCIPALS; do
  [ "$p" = admin ] && continue
  n=0
  for a in "${acls[@]}"; do
    [ "${a%%|*}" = "$p" ] || continue
    # shellcheck disable=SC2086  # the args are words without spaces
    ka --add --allow-principal "User:$p" ${a#*|} >/dev/null
    n=$((n + 1))
  done
  echo "  User:$p: $n ACLs"
done
echo "done"
