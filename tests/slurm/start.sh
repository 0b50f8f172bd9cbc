#!/usr/bin/env bash
# Start a SLURM cluster on localhost for the SLURM test: munged, slurmctld and one slurmd per
# node, cgroup-free (proctrack/linuxproc, task/none) and without accounting, the
# configuration ../shared/STACK.md found to work in containers. Two nodes by default
# ($SECATEURS_SLURM_NODES): node1 and node2, two slurmd on this host with their own ports
# (Debian builds SLURM with multiple-slurmd support), so a job can span two nodes and the
# multi-node training launch (srun starting one torchrun per node) runs for real. State, spool, logs and
# `pids` (the PIDs of the daemons this script started, which tests/slurm/stop.sh stops)
# live under $SECATEURS_SLURM_DIR (default /tmp/secateurs-slurm).
#
# The config goes to the default path, /etc/slurm/slurm.conf: snakemake's jobstep executor
# removes every SLURM_* variable but a few job ids before it calls srun inside the job
# (snakemake_executor_plugin_slurm_jobstep 0.6.1), SLURM_CONF included, so srun finds only
# the default. An existing slurm.conf that this script did not write is never replaced.
#
#   bash tests/slurm/start.sh && sinfo && bash tests/slurm/stop.sh
#
# Exit status: 0 cluster up (node idle), 2 SLURM cannot be installed, 3 it did not start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${SECATEURS_SLURM_DIR:-/tmp/secateurs-slurm}
nodes=${SECATEURS_SLURM_NODES:-2}
conf=/etc/slurm/slurm.conf
marker="# written by secateurs tests/slurm/start.sh"

bash "$here/install.sh" || exit 2
if [ -e "$conf" ] && ! grep -qxF "$marker" "$conf"; then
  echo "tests/slurm/start.sh: $conf exists and was not written by this script; not touching it" >&2
  exit 3
fi
if [ -s "$dir/pids" ]; then
  echo "tests/slurm/start.sh: $dir/pids lists running daemons; run tests/slurm/stop.sh first" >&2
  exit 3
fi
mkdir -p "$dir"/{state,log} /etc/slurm
: > "$dir/pids"

cpus=$(nproc)
mem_mb=$(awk '/MemTotal/ {print int($2 / 1024) - 2048}' /proc/meminfo)
cat > "$conf" <<CONF
$marker
ClusterName=secateurs-test
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
MinJobAge=600
DefMemPerCPU=1000
SchedulerType=sched/backfill
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmdSpoolDir=$dir/spool-%n
StateSaveLocation=$dir/state
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
CONF
# every node claims all CPUs and memory of this host (nothing is enforced without cgroups)
for n in $(seq "$nodes"); do
  echo "NodeName=node$n NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((17000 + n))" \
       "CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN" >> "$conf"
done
echo "PartitionName=debug Nodes=node[1-$nodes] Default=YES MaxTime=INFINITE State=UP" >> "$conf"

# munged: reuse one that answers, else start it (as the munge user, like its unit file)
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
  install -d -o munge -g munge -m 0755 /run/munge
  su -s /bin/sh munge -c "/usr/sbin/munged --force"
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  cat /run/munge/munged.pid >> "$dir/pids"
fi

# The daemons stay in the foreground (-D) of a background job whose output goes to the log
# directory: a caller that captures this script's output is not held open by them.
/usr/sbin/slurmctld -D -i >"$dir/log/slurmctld.out" 2>&1 &
echo $! >> "$dir/pids"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
for n in $(seq "$nodes"); do
  mkdir -p "$dir/spool-node$n"
  /usr/sbin/slurmd -D -N "node$n" >"$dir/log/slurmd-node$n.out" 2>&1 &
  echo $! >> "$dir/pids"
done

for _ in $(seq 120); do
  if [ "$(sinfo -h -t idle -o %D 2>/dev/null)" = "$nodes" ]; then
    echo "SLURM up: $nodes nodes, $conf, logs in $dir/log"
    exit 0
  fi
  sleep 0.5
done
echo "tests/slurm/start.sh: $nodes nodes did not all become idle; see $dir/log" >&2
sinfo >&2 || true
bash "$here/stop.sh"
exit 3
