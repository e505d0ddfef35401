#!/usr/bin/env bash
# Starts compose's single Kafka node (KRaft, broker and controller) with
# authentication and authorization, in place of the apache/kafka image's own
# start script:
#   - clients authenticate with SASL/SCRAM-SHA-512 on both client listeners
#     (INTERNAL kafka:9092 for the services, HOST localhost:29092 for tools
#     on the host). SASL_PLAINTEXT: the compose network is one host's bridge;
#     production runs SASL_SSL (or mTLS) so that passwords and messages are
#     encrypted on the wire (README "Kafka security").
#   - the controller listener is bound to the container's loopback and uses
#     SASL/PLAIN with the admin password (KRaft cannot check SCRAM before
#     its metadata is loaded);
#   - StandardAuthorizer with allow.everyone.if.no.acl.found=false: a
#     principal may do only what docker/kafka-acls.sh allows; admin is the
#     only super user;
#   - every principal of docker/kafka-principals.sh is created as a SCRAM
#     user when the storage is formatted (first start of the volume).
# Passwords come from MILLOM_KAFKA_<PRINCIPAL>_PASSWORD; a missing or weak
# one stops the container with its name.
#
# One node (compose.yaml) by default. compose.kafka-cluster.yaml runs three
# with these set on each (README "Kafka in production: three brokers"):
#   MILLOM_KAFKA_NODE_ID             this node's id (1)
#   MILLOM_KAFKA_QUORUM_VOTERS       the controllers, id@host:9093,... (1@localhost:9093);
#                                    other than localhost, the controller
#                                    listener is on the compose network
#   MILLOM_KAFKA_ADVERTISED_HOST     this node's name for the services (kafka)
#   MILLOM_KAFKA_HOST_PORT           this node's port for host tools (29092)
#   MILLOM_KAFKA_REPLICATION_FACTOR  replicas of the internal topics (consumer
#                                    offsets, transactions) and the default (1)
#   MILLOM_KAFKA_MIN_INSYNC_REPLICAS replicas an acks=all write waits for (1)
set -euo pipefail
. "$(dirname "$0")/kafka-principals.sh"

BIN=${KAFKA_BIN:-/opt/kafka/bin}
: "${CLUSTER_ID:?CLUSTER_ID is required}"
NODE_ID=${MILLOM_KAFKA_NODE_ID:-1}
VOTERS=${MILLOM_KAFKA_QUORUM_VOTERS:-1@localhost:9093}
ADVERTISED_HOST=${MILLOM_KAFKA_ADVERTISED_HOST:-kafka}
HOST_PORT=${MILLOM_KAFKA_HOST_PORT:-29092}
RF=${MILLOM_KAFKA_REPLICATION_FACTOR:-1}
MIN_ISR=${MILLOM_KAFKA_MIN_INSYNC_REPLICAS:-1}
for v in NODE_ID HOST_PORT RF MIN_ISR; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "kafka-start.sh: $v=${!v} is not a positive number" >&2; exit 1; }
done
[ "$MIN_ISR" -le "$RF" ] || {
  echo "kafka-start.sh: MILLOM_KAFKA_MIN_INSYNC_REPLICAS=$MIN_ISR is above MILLOM_KAFKA_REPLICATION_FACTOR=$RF" >&2
  exit 1
}
# A single node keeps its controller on the container's loopback; a quorum
# of several needs it on the network (still SASL, the admin's password).
controller_bind=localhost
case ",$VOTERS," in *@localhost:*) ;; *) controller_bind= ;; esac
admin_pw=$(principal_password admin)
scram_args=()
for p in $MILLOM_KAFKA_PRINCIPALS; do
  pw=$(principal_password "$p")
  scram_args+=(--add-scram "SCRAM-SHA-512=[name=$p,password=$pw]")
done

umask 077
dir=${MILLOM_KAFKA_CONFIG_DIR:-/tmp/millom-kafka}  # the healthcheck reads admin.properties here
mkdir -p "$dir"
props=$dir/server.properties
cat >"$props" <<PROPS
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
listeners=INTERNAL://:9092,HOST://:$HOST_PORT,CONTROLLER://$controller_bind:9093
advertised.listeners=INTERNAL://$ADVERTISED_HOST:9092,HOST://localhost:$HOST_PORT
listener.security.protocol.map=INTERNAL:SASL_PLAINTEXT,HOST:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
inter.broker.listener.name=INTERNAL
controller.listener.names=CONTROLLER
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.internal.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
listener.name.host.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.controller.sasl.enabled.mechanisms=PLAIN
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin_pw" user_admin="$admin_pw";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin
log.dirs=${KAFKA_LOG_DIRS:-/var/lib/kafka/data}
# Topics come from create-topics, never from a typo.
auto.create.topics.enable=false
offsets.topic.replication.factor=$RF
transaction.state.log.replication.factor=$RF
transaction.state.log.min.isr=$MIN_ISR
default.replication.factor=$RF
min.insync.replicas=$MIN_ISR
# A replica that was not in sync never becomes leader: no acknowledged
# write is lost (Kafka's default, stated).
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
PROPS

# For the healthcheck (and `docker compose exec kafka` tools).
cat >"$dir/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
PROPS

# First start of the volume: format, with every principal's SCRAM user.
# Later starts keep the metadata (kafka-acls.sh sets changed passwords).
"$BIN/kafka-storage.sh" format --ignore-formatted -t "$CLUSTER_ID" -c "$props" "${scram_args[@]}"
exec "$BIN/kafka-server-start.sh" "$props"
