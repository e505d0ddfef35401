#!/usr/bin/env bash
# Creates Millom's Kafka topics on a real cluster: the topics of
# shared/plumbing/topics.h (which devbroker creates from the same table; the lists
# below are checked against it by tests/unit/test_shared_topics.c), with
# partitions, replication and retention. Idempotent: an existing topic is
# kept (its partition count is never changed, since that would move keys)
# and its configs are set again.
# Run by the one-shot `create-topics` job of compose.yaml inside the
# apache/kafka image; also usable against any cluster:
#   KAFKA_BOOTSTRAP=broker:9092 KAFKA_BIN=/opt/kafka/bin docker/create-topics.sh
set -euo pipefail

BOOTSTRAP=${KAFKA_BOOTSTRAP:-kafka:9092}
BIN=${KAFKA_BIN:-/opt/kafka/bin}
PARTITIONS=${MILLOM_TOPIC_PARTITIONS:-6}        # per topic; the most instances a consumer group can use
REPLY_PARTITIONS=${MILLOM_REPLY_PARTITIONS:-8}  # millom.replies: one per api-edge instance, at least 8
RF=${MILLOM_REPLICATION_FACTOR:-1}              # 1 on the single-node compose broker; 3 in production
# Replicas an acks=all write (every Millom producer) waits for: 2 of 3 in
# production keeps writes going with one broker down and loses nothing
# acknowledged with one disk lost. Default: 2 from RF 3 up, else 1.
MIN_ISR=${MILLOM_MIN_INSYNC_REPLICAS:-$([ "$RF" -ge 3 ] 2>/dev/null && echo 2 || echo 1)}
DAY=86400000
RETENTION_MS=${MILLOM_RETENTION_MS:-$((7 * DAY))}                  # events and commands
REQUEST_RETENTION_MS=${MILLOM_REQUEST_RETENTION_MS:-3600000}       # queries and replies: deadlines are seconds
DLQ_RETENTION_MS=${MILLOM_DLQ_RETENTION_MS:-$((30 * DAY))}         # time to look at what failed
RECORDS_RETENTION_MS=${MILLOM_RECORDS_RETENTION_MS:-$((400 * DAY))} # settlement records: a year and a month

for v in PARTITIONS REPLY_PARTITIONS RF MIN_ISR; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "create-topics.sh: $v=${!v} is not a positive number" >&2; exit 1; }
done
[ "$MIN_ISR" -le "$RF" ] || {
  echo "create-topics.sh: MILLOM_MIN_INSYNC_REPLICAS=$MIN_ISR is above MILLOM_REPLICATION_FACTOR=$RF" >&2
  exit 1
}

# Topics a Millom service consumes; each gets a <topic>.dlq twin.
consumed_topics=(
  millom.queries
  millom.purchase.commands
  millom.activation.callbacks
  millom.purchase.events
  millom.consents
  millom.subscriber.events
  millom.offer.impressions
  millom.purchase.lookups
  millom.settlement.queries
  millom.cpid.registrations
  millom.consent.queries
  millom.topup.commands
  millom.topup.events
)

# Request/reply traffic that nobody needs once its deadline has passed.
short_lived="millom.queries millom.purchase.lookups millom.settlement.queries millom.consent.queries"

# KAFKA_COMMAND_CONFIG: client properties (authentication) for the tools;
# compose's init job (kafka-init.sh) sets it to the super user admin's.
auth=()
[ -n "${KAFKA_COMMAND_CONFIG:-}" ] && auth=(--command-config "$KAFKA_COMMAND_CONFIG")

kt() { "$BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" "${auth[@]}" "$@"; }

echo "waiting for Kafka at $BOOTSTRAP"
for i in $(seq 1 60); do
  kt --list >/dev/null 2>&1 && break
  [ "$i" = 60 ] && { echo "Kafka at $BOOTSTRAP did not answer" >&2; exit 1; }
  sleep 2
done

created=0
topic() { # name partitions config...
  local name=$1 parts=$2; shift 2
  local args=() cfgs=()
  for c in "$@" "min.insync.replicas=$MIN_ISR"; do args+=(--config "$c"); cfgs+=("$c"); done
  kt --create --if-not-exists --topic "$name" --partitions "$parts" \
     --replication-factor "$RF" "${args[@]}" >/dev/null
  # Re-apply the configs so that a changed retention reaches existing topics.
  local joined
  joined=$(IFS=,; echo "${cfgs[*]}")
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" "${auth[@]}" --alter \
     --entity-type topics --entity-name "$name" --add-config "$joined" >/dev/null
  echo "  $name  partitions=$parts rf=$RF $joined"
  created=$((created + 1))
}

echo "creating topics"
topic millom.replies "$REPLY_PARTITIONS" cleanup.policy=delete "retention.ms=$REQUEST_RETENTION_MS"
for t in "${consumed_topics[@]}"; do
  r=$RETENTION_MS
  case " $short_lived " in *" $t "*) r=$REQUEST_RETENTION_MS ;; esac
  topic "$t" "$PARTITIONS" cleanup.policy=delete "retention.ms=$r"
  topic "$t.dlq" "$PARTITIONS" cleanup.policy=delete "retention.ms=$DLQ_RETENTION_MS"
done
topic millom.settlement.records "$PARTITIONS" cleanup.policy=delete "retention.ms=$RECORDS_RETENTION_MS"
# Latest report per key (day|operator|provider|currency): compacted, kept forever.
topic millom.settlement.reports "$PARTITIONS" cleanup.policy=compact min.compaction.lag.ms=60000 \
  segment.ms=$DAY
topic millom.notifications.dlq "$PARTITIONS" cleanup.policy=delete "retention.ms=$DLQ_RETENTION_MS"
# State-store changelogs (README "Scaling out"): the latest row per key, kept
# forever, with exactly as many partitions as the topics whose state they
# carry (a row lives in the partition of the message that created it).
topic millom.purchase.changelog "$PARTITIONS" cleanup.policy=compact min.compaction.lag.ms=60000 segment.ms=$DAY
topic millom.notifier.changelog "$PARTITIONS" cleanup.policy=compact min.compaction.lag.ms=60000 segment.ms=$DAY

echo "done: $created topics"
