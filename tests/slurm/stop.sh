#!/usr/bin/env bash
# Stop the daemons tests/slurm/start.sh started (by the PIDs it recorded), newest first.
# Daemons that were already running when it started (a munged of the system) are left alone,
# and so is a slurm.conf it did not write.
set -uo pipefail
dir=${SECATEURS_SLURM_DIR:-/tmp/secateurs-slurm}
[ -f "$dir/pids" ] || exit 0
pids=$(tac "$dir/pids")
for pid in $pids; do kill "$pid" 2>/dev/null; done
for _ in $(seq 50); do
  alive=0
  for pid in $pids; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ $alive = 0 ] && break
  sleep 0.2
done
for pid in $pids; do kill -0 "$pid" 2>/dev/null && kill -9 "$pid"; done
rm -f "$dir/pids"
# the config start.sh wrote to the default path goes too (one it did not write stays)
conf=/etc/slurm/slurm.conf
if [ -f "$conf" ] && grep -qxF "# written by secateurs tests/slurm/start.sh" "$conf"; then
  rm -f "$conf"
fi
