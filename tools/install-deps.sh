#!/bin/sh
# install-deps.sh - makes sure the Debian packages stepstone builds against are
# installed. As root it installs what is missing; otherwise it prints the one
# apt line to run and fails.
set -u
PACKAGES="build-essential pkg-config liblmdb-dev lmdb-utils libjansson-dev libavformat-dev libavcodec-dev \
libavutil-dev libswresample-dev libswscale-dev libpng-dev libopenblas-dev libopenblas-openmp-dev libturbojpeg0-dev"
# clang's fuzzer runtime, for `make fuzz` and the short fuzz run of the suite
[ "${WITH_FUZZ:-1}" = 1 ] && PACKAGES="$PACKAGES clang libclang-rt-14-dev"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" = 0 ]; then
    echo "install-deps: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        echo "install-deps: apt-get failed; run: apt-get install -y$missing" >&2
        exit 1
    }
    exit 0
fi
echo "install-deps: missing packages; run as root:" >&2
echo "  apt-get install -y$missing" >&2
exit 1
