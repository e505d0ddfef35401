#!/usr/bin/env bash
# compose's one-shot init job, as Kafka's super user admin: creates the
# topics (create-topics.sh), then sets the principals' passwords and ACLs
# (kafka-acls.sh). The admin client properties live in a 0600 file for the
# job's lifetime only.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/kafka-principals.sh"
admin_pw=$(principal_password admin)
umask 077
cfg=$(mktemp)
trap 'rm -f "$cfg"' EXIT
cat >"$cfg" <<PROPS
security.protocol=${KAFKA_ADMIN_SECURITY_PROTOCOL:-SASL_PLAINTEXT}
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
PROPS
export KAFKA_COMMAND_CONFIG=$cfg
bash "$HERE/create-topics.sh"
bash "$HERE/kafka-acls.sh"
