#!/usr/bin/env bash
# Install a single-node SLURM (slurm-wlm 22.05 and munge from Debian) when it is missing.
# Used by .ci/run before the tests and by tests/slurm/start.sh. Exits non-zero, changing
# nothing, where it cannot install (not root, no apt-get, no package index): the SLURM
# test then skips.
set -euo pipefail
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "tests/slurm/install.sh: SLURM is not installed and this is not a root shell with apt-get" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
