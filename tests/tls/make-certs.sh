#!/usr/bin/env bash
# Certificates for the TLS tests, into DIR: a CA (ca.pem), a server certificate it signs for
# localhost and 127.0.0.1 (server.pem, server.key), and a second, unrelated CA (other-ca.pem) that a
# client must not accept the server with. Fresh keys every run: nothing secret is committed.
set -euo pipefail
dir=${1:?usage: make-certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
quiet() { "$@" 2>/dev/null; }
for ca in ca other-ca; do
    quiet openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=Isotach test $ca" -keyout "$ca.key" -out "$ca.pem"
done
quiet openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj "/CN=localhost" -keyout server.key -out server.csr
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > server.ext
quiet openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.pem
