#!/bin/sh
# SoftHSM container entrypoint: initialise a fresh token (plus spares), then serve them with
# `p11-kit server --foreground`. The socket lives in $P11_KIT_SOCKET_DIR, which the host bind-mounts, so the
# host loads p11-kit-client.so with P11_KIT_SERVER_ADDRESS=unix:path=<mounted dir>/pkcs11. A second server on
# <mounted dir>/pkcs11-alone exports only the main token, for programs that must see it alone (DNSSEC signers).
#
# Every path is an environment variable with the container's default, so tests run this same script on the
# host against temporary directories.
#
#   SOFTHSM_PIN, SOFTHSM_SO_PIN  user and SO PIN of every token (required; never logged)
#   SOFTHSM_TOKEN_LABEL          label of the main token (default hsm-harness)
#   SOFTHSM_SPARE_TOKENS         extra empty tokens "<label>-spare-<n>" (default 0)
#   P11_KIT_CLIENT_UID/_GID      uid/gid allowed to connect (the host user); p11-kit server refuses any other
#                                peer and creates its socket 0711, so without them only our own uid connects
#
# With arguments, the tokens are initialised and the arguments run instead of p11-kit server (the bridge
# image uses this to start cascade-hsm-bridge on the same tokens).
set -eu

: "${SOFTHSM_PIN:?SOFTHSM_PIN must be set}"
: "${SOFTHSM_SO_PIN:?SOFTHSM_SO_PIN must be set}"
: "${SOFTHSM_TOKEN_LABEL:=hsm-harness}"
: "${SOFTHSM_SPARE_TOKENS:=0}"
: "${SOFTHSM_MODULE:=/usr/lib/softhsm/libsofthsm2.so}"
: "${SOFTHSM_TOKEN_DIR:=/var/lib/softhsm/tokens}"
: "${SOFTHSM2_CONF:=/etc/softhsm/softhsm2.conf}"
: "${P11_KIT_SOCKET_DIR:=/run/p11-kit}"
export SOFTHSM2_CONF

mkdir -p "$SOFTHSM_TOKEN_DIR" "$P11_KIT_SOCKET_DIR"
cat > "$SOFTHSM2_CONF" <<CONF
directories.tokendir = $SOFTHSM_TOKEN_DIR
objectstore.backend = file
log.level = ERROR
slots.removable = false
CONF

init_token() {
  softhsm2-util --init-token --free --label "$1" --pin "$SOFTHSM_PIN" --so-pin "$SOFTHSM_SO_PIN" >/dev/null
  echo "initialised token $1"
}

init_token "$SOFTHSM_TOKEN_LABEL"
n=1
while [ "$n" -le "$SOFTHSM_SPARE_TOKENS" ]; do
  init_token "$SOFTHSM_TOKEN_LABEL-spare-$n"
  n=$((n + 1))
done

if [ "$#" -gt 0 ]; then exec "$@"; fi

set -- "pkcs11:token=$SOFTHSM_TOKEN_LABEL"
n=1
while [ "$n" -le "$SOFTHSM_SPARE_TOKENS" ]; do
  set -- "$@" "pkcs11:token=$SOFTHSM_TOKEN_LABEL-spare-$n"
  n=$((n + 1))
done

# p11-kit server takes user and group names, not numbers: name the host's ids inside the container.
user=
group=
if [ -n "${P11_KIT_CLIENT_UID:-}" ] && [ "$P11_KIT_CLIENT_UID" != "$(id -u)" ]; then
  gid="${P11_KIT_CLIENT_GID:-$P11_KIT_CLIENT_UID}"
  group=$(getent group "$gid" | cut -d: -f1 || true)
  if [ -z "$group" ]; then group=hsm-client; groupadd --gid "$gid" "$group"; fi
  user=$(getent passwd "$P11_KIT_CLIENT_UID" | cut -d: -f1 || true)
  if [ -z "$user" ]; then user=hsm-client; useradd --uid "$P11_KIT_CLIENT_UID" --gid "$gid" --no-create-home --shell /usr/sbin/nologin "$user"; fi
  set -- --user "$user" --group "$group" "$@"
fi

# A second server that exports only the main token, on pkcs11-alone: what a DNSSEC signer is given, so it never
# sees the spares (a signer that takes "the first slot" would otherwise act on whichever token comes first).
if [ -n "$user" ]; then
  p11-kit server --foreground --provider "$SOFTHSM_MODULE" --name "$P11_KIT_SOCKET_DIR/pkcs11-alone" --user "$user" --group "$group" \
    "pkcs11:token=$SOFTHSM_TOKEN_LABEL" >/dev/null &
else
  p11-kit server --foreground --provider "$SOFTHSM_MODULE" --name "$P11_KIT_SOCKET_DIR/pkcs11-alone" "pkcs11:token=$SOFTHSM_TOKEN_LABEL" >/dev/null &
fi

echo "serving $SOFTHSM_TOKEN_LABEL (+$SOFTHSM_SPARE_TOKENS spare) on $P11_KIT_SOCKET_DIR/pkcs11, $SOFTHSM_TOKEN_LABEL alone on $P11_KIT_SOCKET_DIR/pkcs11-alone"
exec p11-kit server --foreground --sh --provider "$SOFTHSM_MODULE" --name "$P11_KIT_SOCKET_DIR/pkcs11" "$@"
