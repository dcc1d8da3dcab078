#!/bin/sh
# meson install script: install-config.sh MODE SAMPLE DEST installs the
# sample config SAMPLE as DEST (under $DESTDIR) unless a config is there
# already: `meson install` never overwrites a config someone edited.
set -eu
mode=$1
sample=$2
dest=${DESTDIR:-}$3
if [ -e "$dest" ]; then
  echo "Keeping $dest (the sample is $sample)"
else
  install -D -m "$mode" "$sample" "$dest"
  echo "Installing $sample to $dest"
fi
