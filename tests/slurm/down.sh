#!/usr/bin/env bash
# Stop the test Slurm cluster started by up.sh: only the PIDs it recorded in $DSD_SLURM_DIR
# (default /tmp/dsd-slurm), never by process name. Succeeds when nothing is running.
set -euo pipefail

DIR=${DSD_SLURM_DIR:-/tmp/dsd-slurm}

# Jobs run under slurmstepd, which outlives slurmd: cancel them first (bounded wait).
if [[ -f $DIR/slurmctld.pid ]] && scontrol ping >/dev/null 2>&1; then
  mapfile -t jobs < <(squeue -h -o %A)
  if ((${#jobs[@]})); then
    scancel "${jobs[@]}" || true
    for _ in $(seq 50); do [[ -z $(squeue -h -o %A) ]] && break; sleep 0.2; done
  fi
fi

running() {  # running PID: exists and is not a zombie (PID 1 here reaps orphans only every few seconds)
  [[ -r /proc/$1/status ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}
stop() {  # stop NAME...: SIGTERM these daemons together, wait up to 10 s, then SIGKILL
  local name pid left pids=()
  for name; do
    pid=$(cat "$DIR/$name.pid" 2>/dev/null) || continue
    # Only signal the PID if it still runs this daemon (a stale file may name a reused PID).
    if running "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && kill -TERM "$pid" 2>/dev/null; then
      pids+=("$pid")
    fi
  done
  for _ in $(seq 100); do
    left=()
    for pid in "${pids[@]}"; do running "$pid" && left+=("$pid"); done
    ((${#left[@]})) || break
    sleep 0.1
  done
  for pid in "${left[@]}"; do
    echo "slurm down: PID $pid ignored SIGTERM for 10 s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
  done
  for name; do rm -f "$DIR/$name.pid"; done
}

# Reverse start order, in stages: slurmctld flushes job records to slurmdbd on its way out,
# and every daemon needs munge until it is gone.
stop slurmd slurmctld
stop slurmdbd
stop mariadbd munged
echo "slurm down"
