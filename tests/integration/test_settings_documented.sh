#!/usr/bin/env bash
# Every environment variable the code reads is in the README's settings
# tables, and every variable those tables name is read by some code.
#   code:   string literals "MILLOM_..." / "KAFKA_..." in services/ and
#           shared/ (settings_*/setting_* calls, the remaining getenv calls,
#           names handed to shared modules such as admin_port_env or the
#           key names of shared/contracts/keys.c);
#   README: the first column of every table row (| `MILLOM_X`, `MILLOM_Y` | ...).
# Compose-only variables (set in compose.yaml / docker/ for the containers,
# read by no Millom program) are listed in COMPOSE_ONLY below.
# Run from the repository root (scripts/test.sh does).
set -uo pipefail
cd "$(dirname "$0")/../.."

COMPOSE_ONLY='MILLOM_KAFKA_<PRINCIPAL>_PASSWORD'

code=$(grep -rhoE '"(MILLOM|KAFKA)_[A-Z0-9_]+"' --include='*.c' --include='*.h' services shared |
  tr -d '"' | sort -u)
readme=$(grep -E '^\|' README.md | cut -d'|' -f2 |
  grep -oE '`(MILLOM|KAFKA)_[A-Z0-9_<>]+`' | tr -d '`' | sort -u)

failed=0
missing=$(comm -23 <(echo "$code") <(echo "$readme"))
if [ -n "$missing" ]; then
  echo "FAIL read by the code but in no README settings table:"
  echo "$missing" | sed 's/^/  /'
  failed=1
fi
unread=$(comm -13 <(echo "$code") <(echo "$readme") | grep -vxF "$COMPOSE_ONLY")
if [ -n "$unread" ]; then
  echo "FAIL in a README settings table but read by no code (not compose-only):"
  echo "$unread" | sed 's/^/  /'
  failed=1
fi
n=$(echo "$code" | grep -c .)
[ $failed -eq 0 ] && echo "ok   all $n variables the code reads are documented, and no others"
exit $failed
