#!/usr/bin/env bash
# Start a throwaway one-node Slurm cluster (with sacct accounting) on localhost, for the tests.
# Installs Debian's packages if missing. State, logs and PID files live in $DSD_SLURM_DIR
# (default /tmp/dsd-slurm); stop with down.sh. Needs root. Works without systemd.
set -euo pipefail

DIR=${DSD_SLURM_DIR:-/tmp/dsd-slurm}
HERE=$(cd "$(dirname "$0")" && pwd)
DAEMONS=(munged mariadbd slurmdbd slurmctld slurmd)  # start order; PID files are $DIR/<name>.pid
TIMEOUT=60                                           # seconds, for each wait below

die() {  # die MESSAGE [LOGFILE]: fail loudly, with the tail of the relevant daemon log
  echo "slurm up: FAILED: $1" >&2
  if [[ -n ${2:-} && -s ${2:-} ]]; then echo "--- tail of $2:" >&2; tail -n 25 "$2" >&2; fi
  "$HERE/down.sh" >/dev/null 2>&1 || true  # leave no half-started cluster behind
  exit 1
}
alive() {  # alive NAME: the recorded PID still runs that daemon (not a PID reused since, not a zombie)
  local pid
  pid=$(cat "$DIR/$1.pid" 2>/dev/null) && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$1" ]] &&
    ! grep -q '^State:[[:space:]]*Z' "/proc/$pid/status" 2>/dev/null
}
wait_for() {  # wait_for DAEMON WHAT LOG CMD...: poll CMD until it succeeds; fail early if DAEMON died
  local daemon=$1 what=$2 log=$3 t; shift 3
  for ((t = 0; t < TIMEOUT * 5; t++)); do
    "$@" >/dev/null 2>&1 && return 0
    alive "$daemon" || die "$daemon exited while waiting for $what" "$log"
    sleep 0.2
  done
  die "timed out after ${TIMEOUT}s waiting for $what" "$log"
}
node_idle() { [[ $(sinfo -h -N -n localhost -o %t) == idle ]]; }
# slurmctld registered with slurmdbd (ControlHost is set) and sacct answers: new jobs reach sacct.
accounting() { [[ -n $(sacctmgr -n -P list cluster dsd format=controlhost) ]] && sacct -n -X; }
start() {  # start NAME CMD...: run a daemon in the foreground in its own session, record its PID
  # setsid: the daemon must not die with the caller's process group (Ctrl-C, test runner kill).
  # Non-interactive bash does not put background jobs in their own group, so setsid execs
  # without forking and $! is the daemon's own PID.
  local name=$1 t; shift
  setsid "$@" >>"$DIR/log/$name.out" 2>&1 </dev/null &
  echo $! >"$DIR/$name.pid"
  # Wait for the exec (comm becomes NAME), or alive() would see setsid/setpriv and report a death.
  for ((t = 0; t < 50; t++)); do alive "$name" && return 0; sleep 0.1; done
  die "$name did not start" "$DIR/log/$name.out"
}

[[ $(id -u) == 0 ]] || die "must run as root"

# Already up? Then nothing to do. Half up (some daemon died)? Then restart everything cleanly.
up=0
for d in "${DAEMONS[@]}"; do alive "$d" && up=$((up + 1)); done
if ((up == ${#DAEMONS[@]})) && scontrol ping >/dev/null 2>&1; then
  echo "slurm up: already running (state in $DIR)"; exit 0
fi
((up == 0)) || "$HERE/down.sh"

# Install only what is missing.
PKGS=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  # The packages' postinst would start their daemons through init scripts (unrecorded PIDs,
  # default configs); a policy-rc.d that answers 101 forbids that. Keep an existing one.
  policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >$policy; chmod +x $policy; made_policy=1; fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  ((made_policy == 0)) || rm -f $policy
fi

mkdir -p "$DIR"/{log,run,state,spool} /etc/slurm
rm -f "$DIR"/log/*  # fresh logs each start, so a failure shows this run's errors
install -d -o munge -g munge -m 755 /run/munge
install -d -o mysql -g mysql -m 755 /run/mysqld
[[ -s /etc/munge/munge.key ]] || { mungekey --create --keyfile=/etc/munge/munge.key; chown munge:munge /etc/munge/munge.key; chmod 600 /etc/munge/munge.key; }

CPUS=$(nproc)
# RealMemory (MiB): 80% of the machine's; slurmd drains a node that has less than configured.
MEM=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) * 8 / 10 / 1024 ))

# The client tools (sbatch, squeue, sacct, scancel; also submitit's calls) read /etc/slurm/slurm.conf
# with no special environment, so the config goes there rather than behind SLURM_CONF.
cat >/etc/slurm/slurm.conf <<CONF
# Written by $HERE/up.sh: throwaway one-node test cluster.
ClusterName=dsd
SlurmctldHost=localhost
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
# No systemd and no cgroup delegation here: plain /proc process tracking, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Allocate single CPUs (not whole nodes) so several 1-CPU jobs run at once. Memory is consumable
# too, so give jobs without --mem a small default instead of the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
ReturnToService=2
KillWait=5
# The default MailProg (/bin/mail) is not installed; slurmctld logs an error without one.
MailProg=/bin/true
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# sacct (which submitit polls) needs job accounting through slurmdbd.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

cat >/etc/slurm/slurmdbd.conf <<CONF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$DIR/log/slurmdbd.log
PidFile=$DIR/run/slurmdbd.pid
StorageType=accounting_storage/mysql
# root over the local socket (MariaDB's unix_socket auth): no password to manage.
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
CONF
chmod 600 /etc/slurm/slurmdbd.conf  # slurmdbd refuses a world-readable config

# munge authenticates every Slurm RPC; munged must run as user munge (it owns key and socket).
start munged setpriv --reuid=munge --regid=munge --init-groups munged -F
wait_for munged "munge" "$DIR/log/munged.out" sh -c 'munge -n </dev/null | unmunge'

# The accounting DB lives in the state dir, so it shares a lifetime with slurmctld's state
# (job IDs restart at 1 only when both are wiped; otherwise sacct would mix old and new jobs).
if [[ ! -d $DIR/mysql/mysql ]]; then
  mariadb-install-db --user=mysql --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
    --skip-test-db >"$DIR/log/mariadb-install.out" 2>&1 || die "mariadb-install-db" "$DIR/log/mariadb-install.out"
fi
start mariadbd mariadbd --user=mysql --datadir="$DIR/mysql" --socket=/run/mysqld/mysqld.sock --skip-networking
wait_for mariadbd "mariadb" "$DIR/log/mariadbd.out" mariadb-admin ping

start slurmdbd slurmdbd -D
wait_for slurmdbd "slurmdbd" "$DIR/log/slurmdbd.log" sacctmgr -n list cluster
sacctmgr -n -P list cluster format=cluster | grep -qx dsd || sacctmgr -i add cluster dsd >/dev/null

start slurmctld slurmctld -D
wait_for slurmctld "slurmctld" "$DIR/log/slurmctld.log" scontrol ping
# -N: the node is called localhost in slurm.conf, but this machine's host name is not localhost.
start slurmd slurmd -D -N localhost
wait_for slurmd "node localhost to be idle" "$DIR/log/slurmd.log" node_idle
wait_for slurmctld "slurmctld to register with slurmdbd" "$DIR/log/slurmctld.log" accounting

echo "slurm up: partition debug, node localhost ($CPUS CPUs, ${MEM} MiB), state in $DIR"
