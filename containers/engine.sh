#!/bin/sh
# A Docker engine (Debian's docker.io) on a private socket, for CI and for working on the container drivers
# on a shared machine: nothing appears at /var/run/docker.sock, so other programs and tests on the machine
# see no engine unless they are given this DOCKER_HOST.
#
#   containers/engine.sh start   start dockerd, wait until it answers, print DOCKER_HOST=unix://...
#   containers/engine.sh stop    stop it (its containers stop with it) and wait for it to exit
#
# HSM_ENGINE_DIR (default /tmp/hsm-docker) holds the socket, pid file, exec root and log.
# HSM_ENGINE_DATA (default /var/lib/hsm-docker) holds images and layers. It is kept between runs: that is
# the image cache, so the base image built with debootstrap and the SoftHSM image are built once per machine.
set -eu

dir=${HSM_ENGINE_DIR:-/tmp/hsm-docker}
data=${HSM_ENGINE_DATA:-/var/lib/hsm-docker}
sock="unix://$dir/docker.sock"
pidfile="$dir/dockerd.pid"

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-}" in
  start)
    command -v dockerd >/dev/null || { echo "engine.sh: dockerd not found; apt-get install docker.io" >&2; exit 2; }
    if running; then echo "DOCKER_HOST=$sock"; exit 0; fi
    mkdir -p "$dir" "$data"
    dockerd -H "$sock" --data-root "$data" --exec-root "$dir/exec" --pidfile "$pidfile" >"$dir/dockerd.log" 2>&1 &
    i=0
    until DOCKER_HOST=$sock docker version >/dev/null 2>&1; do
      i=$((i + 1))
      if [ "$i" -gt 120 ]; then
        echo "engine.sh: dockerd did not answer within 60 s; last lines of $dir/dockerd.log:" >&2
        tail -n 5 "$dir/dockerd.log" >&2
        exit 1
      fi
      sleep 0.5
    done
    echo "DOCKER_HOST=$sock"
    ;;
  stop)
    if ! running; then exit 0; fi
    pid=$(cat "$pidfile")
    kill "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
      i=$((i + 1))
      if [ "$i" -gt 60 ]; then echo "engine.sh: dockerd $pid still running after 30 s; killing it" >&2; kill -9 "$pid" 2>/dev/null || true; break; fi
      sleep 0.5
    done
    ;;
  *)
    echo "usage: containers/engine.sh start|stop" >&2
    exit 2
    ;;
esac
