# shellcheck shell=bash disable=SC2034
# Millom's Kafka principals (SCRAM-SHA-512 users), sourced by
# docker/kafka-start.sh (users created when the storage is formatted) and
# docker/kafka-acls.sh (passwords set again, so a changed one applies, and
# the ACLs). The password of principal "a-b" is $MILLOM_KAFKA_A_B_PASSWORD.
# admin is the only super user: the broker itself and the init job.
MILLOM_KAFKA_PRINCIPALS="admin api-edge offer-resolver purchase-executor notifier settlement-reporter mno analyst"

# The name of the variable that holds a principal's password.
principal_password_var() {
  local up=${1//-/_}
  echo "MILLOM_KAFKA_${up^^}_PASSWORD"
}

# Prints a principal's password; fails with the variable's name when it is
# unset, shorter than 16 characters or has characters that JAAS and the
# SCRAM credential syntax would need quoted (letters, digits and ._~+/=-
# only: `openssl rand -hex 32` and `openssl rand -base64 32` fit).
principal_password() {
  local var
  var=$(principal_password_var "$1")
  local pw=${!var:-}
  if [ -z "$pw" ]; then
    echo "$var is not set (the Kafka password of principal $1)" >&2
    return 1
  fi
  if [ "${#pw}" -lt 16 ] || ! [[ $pw =~ ^[A-Za-z0-9._~+/=-]+$ ]]; then
    echo "$var: at least 16 characters of A-Z a-z 0-9 . _ ~ + / = -" >&2
    return 1
  fi
  printf '%s' "$pw"
}
