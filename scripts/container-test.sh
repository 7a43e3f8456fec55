#!/usr/bin/env bash
# `npm run test:container`: builds the repository's Dockerfile and runs the image against a real broker, on the users
# example (topology.yaml, examples/users), the way docs/container.md says to run it. Checks: the image holds no dev
# dependency and no sources; `validate` of a broken topology exits 1 with file:line:col; a topology's .ts modules load
# (the example's, and one that imports 'foldstream'); /readyz becomes 200; a command through the gateway gets its
# reply; /metrics has foldstream_ series; the process runs as the non-root user under tini; `docker stop` drains (exit
# 0, before the kill timeout, no transaction left open); a second run on the same state volume restores nothing;
# a run on a fresh volume does restore (the control); the HEALTHCHECK reports healthy; Node as PID 1 ignores SIGTERM
# and tini passes it on; compose.yaml parses. Ends with "container: N passed, N failed"; exits 1 when a check fails.
#
# The engine: an ordinary Docker engine that can pull the base image (NODE_IMAGE, default node:20-bookworm-slim) is
# used as it is. Otherwise (no image registry reachable, as on this project's machines) the script, as root, starts
# the private engine of ../shared/tools/container-engine.sh (CONTAINER_ENGINE_TOOL to name another path), which has a
# local stand-in for the base image and whose builder wants the `# syntax=` line stripped; it stops that engine again
# when it was the one to start it. The broker: `npm run kafka:start` on the port of KAFKA_BROKERS (default
# 127.0.0.1:9092), reused when it runs, stopped at the end when this script started it.
# Environment: KAFKA_BROKERS, NODE_IMAGE, FOLDSTREAM_IMAGE (the tag to build, default foldstream:test),
# CONTAINER_ENGINE_TOOL, READY_TIMEOUT_S (default 180).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
IMAGE=${FOLDSTREAM_IMAGE:-foldstream:test}
NODE_IMAGE=${NODE_IMAGE:-node:20-bookworm-slim}
export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
READY_TIMEOUT_S=${READY_TIMEOUT_S:-180}
STOP_TIMEOUT_S=60
RUN_ID="fs-ct-$$"
VOLUME="$RUN_ID-state"
WORK=$(mktemp -d)
passed=0
failed=0
started_kafka=false
stop_engine=""
containers=()
DOCKER=docker

say() { echo "container-test: $*" >&2; }
pass() { passed=$((passed + 1)); echo "  ok   $*"; }
fail() { failed=$((failed + 1)); echo "  FAIL $*"; }
check() { # check "what" command...: passes when the command succeeds; its output is shown when it fails
  local what=$1; shift
  if "$@" >"$WORK/check.out" 2>&1; then pass "$what"; else fail "$what"; grep -v '^WARNING: IPv4 forwarding' "$WORK/check.out" | tail -20 | sed 's/^/    | /'; fi
}

cleanup() {
  local rc=$?
  set +e
  for c in "${containers[@]}"; do $DOCKER rm -f -v "$c" >/dev/null 2>&1; done  # -v: the anonymous volumes too
  $DOCKER volume rm -f "$VOLUME" "$RUN_ID-fresh" >/dev/null 2>&1
  rm -rf "$WORK"
  if $started_kafka; then npx --no-install tsx scripts/kafka/cli.ts stop >/dev/null 2>&1; fi
  if [ -n "$stop_engine" ]; then bash "$stop_engine" down >/dev/null 2>&1; fi
  exit "$rc"
}
trap cleanup EXIT

# --- what the script needs on the host -------------------------------------------------------------------------------
node scripts/bootstrap.mjs
if ! command -v curl >/dev/null; then
  [ "$(id -u)" = 0 ] || { say "curl is missing"; exit 1; }
  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl >/dev/null
fi

# --- the engine ------------------------------------------------------------------------------------------------------
find_tool() {
  local t
  for t in "${CONTAINER_ENGINE_TOOL:-}" "$ROOT/../shared/tools/container-engine.sh" "$ROOT/../../shared/tools/container-engine.sh"; do
    [ -n "$t" ] && [ -f "$t" ] && { echo "$t"; return 0; }
  done
  return 1
}
dockerfile="$ROOT/Dockerfile"
if command -v docker >/dev/null && docker info >/dev/null 2>&1 && timeout 120 docker pull -q "$NODE_IMAGE" >/dev/null 2>&1; then
  say "using the Docker engine at ${DOCKER_HOST:-the default socket}: it pulled $NODE_IMAGE"
else
  tool=$(find_tool) || { say "no engine that can pull $NODE_IMAGE, and no ../shared/tools/container-engine.sh (CONTAINER_ENGINE_TOOL)"; exit 1; }
  [ "$(id -u)" = 0 ] || { say "$tool needs root"; exit 1; }
  tool_sock="${ENGINE_DIR:-/var/tmp/foldstream-engine}/docker.sock"
  if ! /usr/bin/docker -H "unix://$tool_sock" info >/dev/null 2>&1; then stop_engine=$tool; fi
  say "no image registry: starting the local engine ($tool up)"
  engine_env=$(bash "$tool" up)
  eval "$engine_env"
  DOCKER=/usr/bin/docker
  # this builder would pull docker/dockerfile for a `# syntax=` line: the only change made to the Dockerfile here
  sed '1{/^# syntax=/d}' "$ROOT/Dockerfile" >"$WORK/Dockerfile"
  dockerfile="$WORK/Dockerfile"
fi

# --- the broker ------------------------------------------------------------------------------------------------------
port=${KAFKA_BROKERS%%,*}; port=${port##*:}
if out=$(npx --no-install tsx scripts/kafka/cli.ts start --port "$port" 2>&1); then
  say "$out"
  case $out in started*) started_kafka=true ;; esac
else
  echo "$out" >&2; say "could not start Kafka on port $port"; exit 1
fi

# --- build -----------------------------------------------------------------------------------------------------------
say "building $IMAGE from the repository's Dockerfile"
t0=$(date +%s)
if ! DOCKER_BUILDKIT=1 $DOCKER build --network host -f "$dockerfile" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1; then
  tail -40 "$WORK/build.log"; say "docker build failed"; exit 1
fi
build_s=$(($(date +%s) - t0))
size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
say "built in ${build_s} s; image size $((size / 1000000)) MB"

echo "image"
version=$(node -p "require('./package.json').version")
check "label org.opencontainers.image.version is package.json's version ($version)" \
  test "$($DOCKER image inspect -f '{{index .Config.Labels "org.opencontainers.image.version"}}' "$IMAGE")" = "$version"
check "label org.opencontainers.image.licenses is package.json's licence" \
  test "$($DOCKER image inspect -f '{{index .Config.Labels "org.opencontainers.image.licenses"}}' "$IMAGE")" = "$(node -p "require('./package.json').license")"
check "runs as the user node (uid 1000), not root" test "$($DOCKER run --rm --entrypoint id "$IMAGE" -u 2>/dev/null)" = 1000
check "declares the state volume and the HTTP port" \
  test "$($DOCKER image inspect -f '{{json .Config.Volumes}} {{json .Config.ExposedPorts}}' "$IMAGE")" = '{"/var/lib/foldstream":{}} {"9464/tcp":{}}'
# What is in /app, every package folder of node_modules (scoped ones as @scope/name), and any .ts file under dist/
$DOCKER run --rm --entrypoint sh "$IMAGE" -c 'ls -A /app' >"$WORK/app.txt" 2>/dev/null
$DOCKER run --rm --entrypoint sh "$IMAGE" -c \
  'cd /app/node_modules && for d in *; do case $d in @*) for s in "$d"/*; do [ -e "$s" ] && echo "$s"; done ;; *) echo "$d" ;; esac; done' \
  >"$WORK/modules.txt" 2>/dev/null
check "/app holds bin, dist, node_modules, package.json and topology.schema.json only (no src/, test/, examples/, tsconfig)" \
  test "$(sort "$WORK/app.txt" | tr '\n' ' ')" = "bin dist node_modules package.json topology.schema.json "
check "node_modules holds no dev dependency (no package the lockfile marks dev: typescript, ava, @types/node, ...)" node -e '
  const fs = require("node:fs");
  const lock = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages;
  const dev = new Set(Object.entries(lock).filter(([p, v]) => v.dev && /^node_modules\/(@[^/]+\/)?[^/]+$/.test(p)).map(([p]) => p.slice(13)));
  const inImage = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
  const found = inImage.filter((p) => dev.has(p));
  if (found.length) console.error("    dev dependencies in the image: " + found.join(", "));
  const sane = ["typescript", "ava", "@types/node"].every((p) => dev.has(p)) && ["kafkajs", "tsx", "classic-level"].every((p) => inImage.includes(p));
  if (!sane) console.error("    the lockfile or the listing is not what this check expects");
  process.exit(found.length || !sane ? 1 : 0);
' "$WORK/modules.txt"
check "dist/ holds JavaScript only (no .ts declarations or sources, no source maps)" \
  test -z "$($DOCKER run --rm --entrypoint find "$IMAGE" /app/dist -name '*.ts' -o -name '*.map' 2>/dev/null)"

echo "validate and test, no broker"
mkdir -p "$WORK/broken"
printf '%s\n' 'app: broken' 'kafka: { brokers: "127.0.0.1:9092" }' 'topics:' '  out: { name: out, partitions: 1 }' 'processors:' \
  '  - name: p' '    type: projection' '    input: nowhere' '    output: out' '    on: {}' >"$WORK/broken/topology.yaml"
set +e
$DOCKER run --rm -v "$WORK/broken:/topology:ro" "$IMAGE" validate /topology/topology.yaml >"$WORK/validate.txt" 2>&1
code=$?
set -e
check "validate on a broken topology exits 1" test "$code" = 1
check "… and names the place as file:line:col (/topology/topology.yaml:8:12)" grep -q '^/topology/topology.yaml:8:12 ' "$WORK/validate.txt"
example_mounts=(-v "$ROOT/topology.yaml:/topology/topology.yaml:ro" -v "$ROOT/examples/users:/topology/examples/users:ro")
check "validate on the users example exits 0" $DOCKER run --rm "${example_mounts[@]}" "$IMAGE" validate /topology/topology.yaml
check "the users example's YAML tests pass in the image (its .ts decider loads through tsx)" \
  $DOCKER run --rm "${example_mounts[@]}" "$IMAGE" test /topology/examples/users/users.test.yaml
# a module outside the repository imports foldstream by its package name
mkdir -p "$WORK/named"
printf '%s\n' "import { DomainError } from 'foldstream';" 'export const initialState = { count: 0 };' \
  'export function decide(command: { commandType: string; data: { by?: number } }) {' \
  "  if (command.commandType !== 'Add') throw new DomainError('unknown command ' + command.commandType, 'UNKNOWN');" \
  "  return [{ type: 'Added', data: { by: command.data.by ?? 1 } }];" '}' \
  'export function evolve(state: { count: number }, event: { data: { by: number } }) {' '  return { count: state.count + event.data.by };' '}' \
  >"$WORK/named/counter.ts"
printf '%s\n' 'app: named-import' 'kafka: { brokers: "127.0.0.1:9092" }' 'topics:' '  commands: { name: c, partitions: 1 }' \
  '  events: { name: e, partitions: 1 }' '  replies: { name: r, partitions: 1 }' 'processors:' '  - name: counters' '    type: aggregate' \
  '    aggregateType: Counter' '    input: commands' '    output: { events: events, replies: replies }' '    module: ./counter.ts' 'tests:' \
  '  - name: a command adds, an unknown one is rejected with the DomainError imported from foldstream' '    when:' \
  '      - command: { commandId: a, commandType: Add, aggregateId: c1, data: { by: 2 } }' \
  '      - command: { commandId: b, commandType: Nope, aggregateId: c1 }' '    then:' '      replies:' \
  '        a: { status: accepted, aggregateVersion: 1 }' '        b: { status: rejected, code: UNKNOWN }' \
  '      stores: { counters: { state: { c1: { version: 1, state: { count: 2 } } } } }' >"$WORK/named/topology.yaml"
check "a mounted .ts module that imports { DomainError } from 'foldstream' loads and runs" \
  $DOCKER run --rm -v "$WORK/named:/topology:ro" "$IMAGE" test /topology/topology.yaml

# --- run against the broker ------------------------------------------------------------------------------------------
http_port=$(node -e "const s = require('node:net').createServer().listen(0, '127.0.0.1', () => { console.log(s.address().port); s.close(); })")
base="http://127.0.0.1:$http_port"
run_app() { # run_app NAME VOLUME: the users example on that state volume, in the background, its root file system
  # read-only as deploy/kubernetes/ runs it (a tmpfs on /tmp for tsx's compile cache)
  containers+=("$1")
  $DOCKER run -d --name "$1" --network host --read-only --tmpfs /tmp --stop-timeout "$STOP_TIMEOUT_S" "${example_mounts[@]}" \
    -v "$2:/var/lib/foldstream" -e KAFKA_BROKERS -e HTTP_PORT="$http_port" "$IMAGE" >/dev/null 2>"$WORK/run.err" || { cat "$WORK/run.err"; return 1; }
}
wait_ready() { # wait_ready NAME: /readyz 200 within READY_TIMEOUT_S while the container runs
  local deadline=$(($(date +%s) + READY_TIMEOUT_S))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    [ "$($DOCKER inspect -f '{{.State.Running}}' "$1")" = true ] || return 1
    [ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] && return 0
    sleep 1
  done
  return 1
}
logs_on_failure() { $DOCKER logs --tail 30 "$1" 2>&1 | sed 's/^/    | /'; }
metric_sum() { # metric_sum NAME: the sum of a metric's series on /metrics (0 when it has none)
  curl -sf --max-time 10 "$base/metrics" | awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $NF } END { print s + 0 }'
}
stop_app() { # stop_app NAME [TIMEOUT]: docker stop, and the seconds it took in $stop_s
  local t=$(date +%s%N)
  $DOCKER stop -t "${2:-$STOP_TIMEOUT_S}" "$1" >/dev/null
  stop_s=$(( ($(date +%s%N) - t) / 1000000 ))
  stop_s="$((stop_s / 1000)).$(printf '%03d' $((stop_s % 1000)))"
}

echo "run: the users example against Kafka at $KAFKA_BROKERS, HTTP on $http_port"
first="$RUN_ID-1"
run_app "$first" "$VOLUME"
if wait_ready "$first"; then pass "/readyz answers 200"; else fail "/readyz answers 200 within ${READY_TIMEOUT_S} s"; logs_on_failure "$first"; exit 1; fi
user="ct-$RUN_ID-$(date +%s)"
reply=$(curl -s --max-time 60 -X POST "$base/commands/CreateUser?wait=30000" -H 'content-type: application/json' \
  -d "{\"aggregateId\": \"$user\", \"data\": {\"email\": \"$user@example.com\", \"fullName\": \"Ann\"}, \"expectedVersion\": 0}")
check "a command through the gateway gets its reply: $reply" \
  node -e 'const r = JSON.parse(process.argv[1]); process.exit(r.status === "accepted" && r.aggregateVersion === 1 ? 0 : 1)' "$reply"
reply=$(curl -s --max-time 60 -X POST "$base/commands/UpgradeStatus?wait=30000" -H 'content-type: application/json' \
  -d "{\"aggregateId\": \"$user\", \"data\": {\"status\": \"ACTIVE\"}}")
check "a rule of the decider rejects: $reply" \
  node -e 'const r = JSON.parse(process.argv[1]); process.exit(r.status === "rejected" && r.code === "NOT_AN_UPGRADE" ? 0 : 1)' "$reply"
check "/metrics has foldstream_ series" sh -c "curl -sf --max-time 10 '$base/metrics' | grep -q '^foldstream_tasks{'"
check "/metrics counts the commands' outcomes" test "$(metric_sum foldstream_command_outcomes_total)" -ge 2
# who runs what inside: PID 1 and the node process, with their uids
$DOCKER exec "$first" sh -c 'for d in /proc/[0-9]*; do [ -r "$d/status" ] && echo "${d#/proc/} $(cat "$d/comm") $(sed -n "s/^PPid:\t//p" "$d/status") $(sed -n "s/^Uid:\t\([0-9]*\).*/\1/p" "$d/status")"; done' \
  >"$WORK/procs.txt" 2>/dev/null || true
check "PID 1 is tini, as the user node (uid 1000)" grep -q '^1 tini 0 1000$' "$WORK/procs.txt"
check "foldstream is node, a child of tini, as the user node (uid 1000)" grep -Eq '^[0-9]+ node 1 1000$' "$WORK/procs.txt"
# Commands in flight when the stop comes: the drain must commit what is open and leave no transaction behind
for i in $(seq 1 40); do
  curl -s --max-time 30 -o /dev/null -X POST "$base/commands/CreateUser" -H 'content-type: application/json' \
    -d "{\"aggregateId\": \"$user-$i\", \"data\": {\"email\": \"$user-$i@example.com\"}}" &
done
wait
stop_app "$first"
code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$first")
# exit 0, not 137: it ended by itself before the kill timeout ($STOP_TIMEOUT_S s); the time is shown, not asserted
check "docker stop drains: exit 0 (it was $code), in $stop_s s" test "$code" = 0
$DOCKER logs "$first" >"$WORK/first.log" 2>&1
check "… through foldstream's SIGTERM handler (its log: signal SIGTERM, then app.stopped)" \
  sh -c "grep -q '\"event\":\"signal\",\"signal\":\"SIGTERM\"' '$WORK/first.log' && grep -q '\"event\":\"app.stopped\"' '$WORK/first.log'"
check "… and no transaction is left open on the app's topics" npx --no-install tsx scripts/container-test-kafka.ts topology.yaml

echo "run again on the same state volume"
second="$RUN_ID-2"
run_app "$second" "$VOLUME"
if wait_ready "$second"; then pass "/readyz answers 200"; else fail "/readyz answers 200 within ${READY_TIMEOUT_S} s"; logs_on_failure "$second"; exit 1; fi
restored=$(metric_sum foldstream_restore_records_total)
check "restores nothing: the stores were kept (foldstream_restore_records_total is $restored)" test "$restored" = 0
state=$(curl -s --max-time 10 "$base/aggregates/User/$user")
check "serves the aggregate written by the first run: $state" \
  node -e 'const r = JSON.parse(process.argv[1]); process.exit(r.version === 1 && r.state.email.endsWith("@example.com") ? 0 : 1)' "$state"
health=""
for _ in $(seq 1 40); do
  health=$($DOCKER inspect -f '{{.State.Health.Status}}' "$second")
  [ "$health" = starting ] || break
  sleep 2
done
check "the HEALTHCHECK reports healthy (it was $health)" test "$health" = healthy
stop_app "$second"
code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$second")
check "docker stop drains again: exit 0 (it was $code) in $stop_s s" test "$code" = 0

echo "run on a fresh state volume (the control of the check above)"
third="$RUN_ID-3"
run_app "$third" "$RUN_ID-fresh"
if wait_ready "$third"; then pass "/readyz answers 200"; else fail "/readyz answers 200 within ${READY_TIMEOUT_S} s"; logs_on_failure "$third"; exit 1; fi
restored=$(metric_sum foldstream_restore_records_total)
check "restores the stores from their changelogs (foldstream_restore_records_total is $restored)" test "$restored" -gt 0
stop_app "$third"
check "docker stop drains: exit 0" test "$($DOCKER inspect -f '{{.State.ExitCode}}' "$third")" = 0

echo "signals: why tini is PID 1"
# Node as PID 1 with no SIGTERM handler of its own (as foldstream is until its handler is installed): the kernel
# drops the signal, and docker stop has to wait for its timeout and kill it (137)
containers+=("$RUN_ID-pid1")
$DOCKER run -d --name "$RUN_ID-pid1" --entrypoint node "$IMAGE" -e 'setInterval(() => {}, 1000)' >/dev/null 2>&1
stop_app "$RUN_ID-pid1" 3
check "Node as PID 1 ignores SIGTERM: killed after the timeout (exit $($DOCKER inspect -f '{{.State.ExitCode}}' "$RUN_ID-pid1"), in $stop_s s)" \
  test "$($DOCKER inspect -f '{{.State.ExitCode}}' "$RUN_ID-pid1")" = 137
# the same Node under the image's tini: the signal reaches it and it ends at once (143: terminated by SIGTERM)
containers+=("$RUN_ID-tini")
$DOCKER run -d --name "$RUN_ID-tini" --entrypoint tini "$IMAGE" -- node -e 'setInterval(() => {}, 1000)' >/dev/null 2>&1
stop_app "$RUN_ID-tini" 3
check "under tini the same process gets SIGTERM (exit $($DOCKER inspect -f '{{.State.ExitCode}}' "$RUN_ID-tini"), in $stop_s s)" \
  test "$($DOCKER inspect -f '{{.State.ExitCode}}' "$RUN_ID-tini")" = 143

# --- compose.yaml ----------------------------------------------------------------------------------------------------
echo "compose.yaml"
compose=()
if $DOCKER compose version >/dev/null 2>&1; then compose=($DOCKER compose)
else
  if ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's docker-compose for its config parser"
    apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose >/dev/null 2>&1 || true
  fi
  command -v docker-compose >/dev/null && compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
  check "${compose[*]} config accepts compose.yaml" sh -c "cd '$ROOT' && ${compose[*]} -f compose.yaml config -q"
else
  fail "no compose config parser could be installed"
fi

echo "image $IMAGE: built in ${build_s} s, $((size / 1000000)) MB"
echo "container: $passed passed, $failed failed"
[ "$failed" = 0 ]
