#!/usr/bin/env bash
# Builds a pause image as an OCI image-layout tar, by hand (nothing can be pulled here): one
# layer holding the static busybox from Debian's busybox-static, whose shell sleeps until
# it is told to stop.
#
#   pause-image.sh OUT.tar NAME      NAME like vethtrace.test/pause:1
set -euo pipefail
out=$1 name=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/layout/blobs/sha256"
cp /bin/busybox "$work/rootfs/bin/busybox"
blob() { # blob FILE MEDIATYPE -> prints a descriptor, stores FILE as a blob
  local sum size
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  size=$(stat -c %s "$1")
  cp "$1" "$work/layout/blobs/sha256/$sum"
  printf '{"mediaType":"%s","digest":"sha256:%s","size":%s}' "$2" "$sum" "$size"
}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/rootfs" -cf "$work/layer.tar" bin
layer=$(blob "$work/layer.tar" application/vnd.oci.image.layer.v1.tar)
diff_id=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
cat > "$work/config.json" <<JSON
{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/bin/busybox","sh","-c","trap 'exit 0' TERM INT; while :; do /bin/busybox sleep 1000 & wait \$!; done"]},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]}}
JSON
config=$(blob "$work/config.json" application/vnd.oci.image.config.v1+json)
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
  "$config" "$layer" > "$work/manifest.json"
manifest=$(blob "$work/manifest.json" application/vnd.oci.image.manifest.v1+json)
annotations=$(printf '{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}' "$name" "${name##*:}")
printf '{"schemaVersion":2,"manifests":[%s]}' "${manifest%\}},\"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"annotations\":$annotations}" \
  > "$work/layout/index.json"
printf '{"imageLayoutVersion":"1.0.0"}' > "$work/layout/oci-layout"
tar -C "$work/layout" -cf "$out" oci-layout index.json blobs
