#!/usr/bin/env bash
# Checks src/api/openapi.json against the service itself:
#   1. the document is a valid OpenAPI 3.1 description (openapi-spec-validator);
#   2. the binary given serves those very bytes (`nova-actions openapi`);
#   3. schemathesis drives every operation of the document against that binary, started on a
#      fresh temporary store seeded with tests/fixtures/golden/fixture.ndjson, and requires no
#      server error (5xx) and no answer the document does not describe (status, content type,
#      headers, body schema).
# Exits non-zero on any failure. The tools live in a virtualenv outside the source tree.
#
#   bash scripts/openapi/check.sh [BINARY]      # BINARY defaults to target/debug/nova-actions
#
# Environment (all optional):
#   NOVA_ACTIONS_OPENAPI_VENV      the virtualenv [$HOME/.cache/nova-actions/openapi-venv]
#   NOVA_ACTIONS_OPENAPI_PYTHON    interpreter that creates it (Python >= 3.10) [python3]
#   NOVA_ACTIONS_OPENAPI_EXAMPLES  schemathesis test cases per operation and phase [50]
#   NOVA_ACTIONS_OPENAPI_SEED      schemathesis's random seed [1]; "random" for a fresh one
#
# Network: only PyPI (through pip), and only when the virtualenv must be (re)built.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/../.." && pwd)"
SPEC="$REPO_DIR/src/api/openapi.json"
FIXTURE="$REPO_DIR/tests/fixtures/golden/fixture.ndjson"
BINARY="${1:-$REPO_DIR/target/debug/nova-actions}"
VENV="${NOVA_ACTIONS_OPENAPI_VENV:-$HOME/.cache/nova-actions/openapi-venv}"
PYTHON="${NOVA_ACTIONS_OPENAPI_PYTHON:-python3}"
EXAMPLES="${NOVA_ACTIONS_OPENAPI_EXAMPLES:-50}"
SEED="${NOVA_ACTIONS_OPENAPI_SEED:-1}"
CONSTRAINTS="$SCRIPT_DIR/constraints.txt"
TOKEN="admin:admin"
# The two tools the check runs; their dependencies are pinned by constraints.txt.
WANTED=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)

die() { echo "openapi/check.sh: ERROR: $*" >&2; exit 1; }
log() { echo "openapi/check.sh: $*" >&2; }

# --- the virtualenv, outside the tree, rebuilt only when the pinned set changes
# shellcheck source=../lib/pinned-venv.sh
source "$SCRIPT_DIR/../lib/pinned-venv.sh"
pinned_venv NOVA_ACTIONS_OPENAPI_VENV "$VENV" "$PYTHON" "$CONSTRAINTS" .nova-actions-openapi \
  "schemathesis openapi-spec-validator" "${WANTED[@]}"

# --- 1. the document itself
log "validating $SPEC"
"$VENV/bin/openapi-spec-validator" "$SPEC" || die "src/api/openapi.json is not a valid OpenAPI document"

# --- 2. the binary serves this document
[[ -x "$BINARY" ]] || die "$BINARY is not an executable (build it: cargo build, or give its path)"
"$BINARY" openapi | cmp -s - "$SPEC" \
  || die "$BINARY serves another document than src/api/openapi.json: rebuild it"

# --- 3. the service, on a fresh store, seeded
WORK="$(mktemp -d "${TMPDIR:-/tmp}/nova-actions-openapi.XXXXXX")"
SERVICE_PID=""
stop_service() {
  if [[ -n "$SERVICE_PID" ]] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill -TERM "$SERVICE_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVICE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  SERVICE_PID=""
}
cleanup() { stop_service; rm -rf "$WORK"; }
trap cleanup EXIT

# Port 0: the kernel picks a free port; the address is read from the service's own output (the
# start-up log line on stderr, or a ready line on stdout where the binary prints one).
# An empty configuration file: built-in defaults (noauth identity), whatever config.toml the
# working directory holds.
: >"$WORK/config.toml"
RUST_LOG=info NOVA_ACTIONS__AUTH__MODE=noauth \
  "$BINARY" --config "$WORK/config.toml" serve --listen 127.0.0.1:0 --data-dir "$WORK/store" \
  --fault-injection --journal \
  >"$WORK/service.out" 2>"$WORK/service.log" &
SERVICE_PID=$!
BASE=""
for _ in $(seq 1 300); do
  BASE="$(grep -ohE 'http://127\.0\.0\.1:[0-9]+' "$WORK/service.out" "$WORK/service.log" 2>/dev/null | head -n 1 || true)"
  [[ -n "$BASE" ]] && break
  kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$WORK/service.log" >&2; die "the service exited at start"; }
  sleep 0.1
done
[[ -n "$BASE" ]] || { cat "$WORK/service.log" >&2; die "the service printed no address within 30 s"; }
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "$BASE/healthcheck" 2>/dev/null && break
  sleep 0.1
done
curl -fsS -o /dev/null "$BASE/healthcheck" || die "$BASE/healthcheck does not answer 200"
log "service up at $BASE (pid $SERVICE_PID, store $WORK/store)"

seeded="$(curl -sS -w '\n%{http_code}' -X POST -H "X-Auth-Token: $TOKEN" \
  -H 'Content-Type: application/x-ndjson' --data-binary "@$FIXTURE" "$BASE/ingest/v1/import")"
[[ "${seeded##*$'\n'}" == 200 ]] || die "seeding failed: $seeded"
log "seeded: ${seeded%$'\n'*}"

# --- schemathesis
# Checks: all of them, less those that cannot apply to this service (each says why):
#   unsupported_method       expects 405 for a method the document does not list; Nova's router
#                            answers 404 to every other method, and the service reproduces that
#                            byte for byte (README, "The read API").
#   ignored_auth             expects a made-up token to be refused; in noauth mode, the only one a
#                            check can start without a Keystone, a token is not checked, it names
#                            the caller (`user:project[:roles]`): any non-empty token is valid.
#   positive_data_acceptance expects every request the schemas allow to succeed; the service
#                            answers 400 where Nova does for what no schema can say (a marker
#                            that names nothing stored, a `name` that is not a regular
#                            expression, a project in the URL that is not the caller's,
#                            changes-since after changes-before, a server name Nova's regex
#                            refuses), and 404 for ids that do not exist.
#   negative_data_rejection  expects every request outside the schemas to be refused; Nova (and
#                            so the service) ignores unknown query parameters below 2.75 (2.58
#                            for action lists), other services' entries in OpenStack-API-Version,
#                            extra text after a limit's digits ("1\n"), and more: the document
#                            describes what a client should send, not everything that is
#                            accepted.
# Everything else runs: not_a_server_error, status_code_conformance, content_type_conformance,
# response_headers_conformance, response_schema_conformance, missing_required_header,
# allow_header_conformance, use_after_free, ensure_resource_availability,
# object_level_authorization.
EXCLUDED_CHECKS="unsupported_method,ignored_auth,positive_data_acceptance,negative_data_rejection"
seed_args=()
[[ "$SEED" == random ]] || seed_args=(--seed "$SEED")
# One worker: with two, on Python 3.11.7, a run stopped with "SystemError: AST constructor
# recursion depth mismatch" raised where hypothesis parses lambda sources (ast.parse on parallel
# threads); and on 2 cores the service needs one anyway. 50 cases take about a minute.
log "schemathesis: every operation, at most $EXAMPLES cases per operation and phase"
# Two runs: a fault rule schemathesis adds would make every later request fail on purpose, so
# the first run covers everything but adding rules, the second only the testing API (which no
# rule ever answers for).
status=0
run_schemathesis() {
  (
    cd "$WORK"   # schemathesis and hypothesis write nothing into the source tree
    "$VENV/bin/schemathesis" --config-file "$SCRIPT_DIR/schemathesis.toml" run "$SPEC" \
      --url "$BASE" \
      --header "X-Auth-Token: $TOKEN" \
      --checks all \
      --exclude-checks "$EXCLUDED_CHECKS" \
      --max-examples "$EXAMPLES" \
      "${seed_args[@]}" \
      --workers 1 \
      --request-timeout 30 \
      --generation-database none \
      --generation-with-security-parameters false \
      --no-color "$@"
  )
}
run_schemathesis --exclude-operation-id addFaultRule || status=$?
[[ "$status" != 0 ]] || run_schemathesis --include-path-regex '^/ingest/v1/testing/' || status=$?

# The service must have lived through it, and never panicked.
alive=1
curl -fsS -o /dev/null "$BASE/healthcheck" 2>/dev/null || alive=0
if grep -n 'panicked' "$WORK/service.log" >&2; then status=1; log "the service panicked (above)"; fi
if [[ "$alive" == 0 ]]; then status=1; log "the service no longer answers /healthcheck"; fi
if [[ "$status" != 0 ]]; then
  # The access log's lines of 5xx answers, and the errors logged with them.
  grep -E ' (GET|HEAD|PUT|POST|DELETE|PATCH|OPTIONS|TRACE) [^ ]+ 5[0-9]{2} |ERROR' "$WORK/service.log" \
    | tail -n 20 >&2 || true
  stop_service
  die "the service does not conform to src/api/openapi.json (schemathesis exit $status)"
fi
stop_service
log "OK: src/api/openapi.json is valid and the service answers as it says"
