#!/usr/bin/env bash
# Makes the certificates for mutual TLS between Temporal's frontend and everything that talks to it:
#
#   scripts/make-temporal-certs.sh [--renew | --force] [dir]      dir defaults to compose/certs
#
#   <dir>/ca/ca.pem, ca.key     the CA; its key is never mounted into a container
#   <dir>/temporal/             the frontend's (and internode) certificate: SAN temporal and localhost
#   <dir>/worker/, api/, ui/, admin/   a client certificate each (the handoff worker, the API, the Temporal UI,
#                               and the admin-tools jobs and operators' CLI)
#   each of those holds ca.pem, cert.pem and key.pem, so a service mounts its own folder and nothing else.
#
# With a CA already in <dir> it stops: a new CA would lock out every certificate it signed. --renew issues new
# server and client certificates under the existing CA (routine rotation); --force makes a new CA and everything.
set -euo pipefail

usage() { echo "usage: $0 [--renew | --force] [dir]" >&2; exit 64; }

mode=new
dir=
for arg in "$@"; do
  case "$arg" in
    --force) mode=force ;;
    --renew) mode=renew ;;
    -h | --help) usage ;;
    -*) usage ;;
    *) [ -z "$dir" ] || usage; dir=$arg ;;
  esac
done
dir=${dir:-"$(cd "$(dirname "$0")/.." && pwd)/compose/certs"}

command -v openssl >/dev/null || { echo "openssl is needed" >&2; exit 69; }

CA_DAYS=3650
LEAF_DAYS=365
CLIENTS=(worker api ui admin)

if [ -e "$dir/ca/ca.key" ]; then
  case "$mode" in
    new)
      echo "$dir already holds a CA; not touching it." >&2
      echo "  --renew  new server and client certificates under this CA" >&2
      echo "  --force  a new CA and new certificates (every running service needs them at once)" >&2
      exit 1
      ;;
    force) rm -rf "${dir:?}/ca" "$dir/temporal" "${CLIENTS[@]/#/$dir/}" ;;
  esac
elif [ "$mode" = renew ]; then
  echo "$dir holds no CA to renew under; run without --renew first" >&2
  exit 1
fi

# The host guards the folder (only its owner may enter); inside it, files are readable by the container users,
# whose ids differ from image to image. Each container sees only the one folder it mounts.
mkdir -p "$dir"
chmod 700 "$dir"
umask 022

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/openssl.cnf" <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
# clientAuth too: the server presents this certificate to itself between its services (internode).
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:temporal, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ "$mode" != renew ]; then
  mkdir -p "$dir/ca"
  chmod 700 "$dir/ca"
  (umask 077 && newkey "$dir/ca/ca.key")
  openssl req -new -x509 -config "$work/openssl.cnf" -extensions ca -key "$dir/ca/ca.key" -sha256 \
    -days "$CA_DAYS" -subj "/O=handoff/CN=handoff Temporal CA" -out "$dir/ca/ca.pem"
  echo "CA: $dir/ca/ca.pem (its key stays in $dir/ca)"
fi

# issue <folder> <common name> <extensions section>
issue() {
  local out="$dir/$1"
  mkdir -p "$out"
  newkey "$work/key.pem"
  openssl req -new -config "$work/openssl.cnf" -key "$work/key.pem" -subj "/O=handoff/CN=$2" -out "$work/req.csr"
  openssl x509 -req -in "$work/req.csr" -CA "$dir/ca/ca.pem" -CAkey "$dir/ca/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -sha256 -days "$LEAF_DAYS" \
    -extfile "$work/openssl.cnf" -extensions "$3" -out "$work/cert.pem" 2>/dev/null
  cp "$dir/ca/ca.pem" "$out/ca.pem"
  mv -f "$work/key.pem" "$out/key.pem"
  mv -f "$work/cert.pem" "$out/cert.pem"
  chmod 644 "$out/ca.pem" "$out/cert.pem" "$out/key.pem"
  echo "$1: $out/cert.pem (CN=$2)"
}

issue temporal temporal server
issue worker handoff-worker client
issue api handoff-api client
issue ui temporal-ui client
issue admin handoff-admin client
echo "valid for $LEAF_DAYS days; renew with: $0 --renew $dir"
