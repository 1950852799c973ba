# shellcheck shell=bash
# A throwaway SLURM cluster on this host for tests: `source tests/slurm/slurm_env.sh`, then
#   slurm_install            # installs slurm-wlm + munge (root + apt) or exits 77 (skip)
#   slurm_start single WORK  # or `two`: nodes n1,n2 on this host; jobs run under WORK
#   id=$(slurm_sbatch job.sh); slurm_wait_job "$id" 120
#   slurm_stop               # also runs from an EXIT trap, so a failing test leaves no daemons
# Everything (conf, munge key/socket, pid files, spool, state, logs) lives in a fresh run dir
# under $LCT_SLURM_BASE (default ${TMPDIR:-/tmp}/lct-slurm); all traffic stays on 127.0.0.1.
# Daemons run as root (SlurmUser=root) and are started directly (no systemd).
# See tests/slurm/README.md for the API, the timing knobs and what was measured.

_LCT_SLURM_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_LCT_SLURM_SRC_DIR=$(cd "$_LCT_SLURM_LIB_DIR/../.." && pwd)

# The daemons live in /usr/sbin, which a non-login root shell (CI) may not have in PATH.
case ":$PATH:" in *:/usr/sbin:*) ;; *) PATH=$PATH:/usr/sbin:/sbin ;; esac

_slurm_log() { echo "[slurm_env $(date +%H:%M:%S)] $*" >&2; }

# slurm_skip MESSAGE...: prints why and exits 77 (CTest reports the test as skipped).
slurm_skip() {
  echo "SKIP: $*" >&2
  exit 77
}

# slurm_install: make slurmctld/slurmd/munged and the client tools available.
slurm_install() {
  local tools=(slurmctld slurmd munged munge sbatch scontrol squeue sinfo scancel)
  local t missing=()
  for t in "${tools[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    slurm_skip "SLURM test needs slurm-wlm and munge (missing: ${missing[*]}); installing them and" \
      "running slurmd needs root. As root: bash $_LCT_SLURM_SRC_DIR/tools/deps.sh slurm"
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    slurm_skip "missing ${missing[*]} and no apt-get to install slurm-wlm + munge"
  fi
  _slurm_log "installing slurm-wlm + munge (tools/deps.sh slurm)"
  if ! bash "$_LCT_SLURM_SRC_DIR/tools/deps.sh" slurm; then
    slurm_skip "tools/deps.sh slurm failed (no network or no Debian mirror?)"
  fi
  for t in "${tools[@]}"; do
    command -v "$t" >/dev/null 2>&1 || slurm_skip "'$t' still missing after installing slurm-wlm munge"
  done
}

# Start time of a live process (field 22 of /proc/PID/stat), so that a reused pid is not taken for
# the owner of a cluster; empty for a dead or zombie (state Z, not yet reaped) process.
_slurm_proc_start() {
  # Fields after "(comm) ": state is the 1st, starttime the 20th.
  sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '$1 != "Z" && $1 != "X" {print $20}'
}

# Kills the daemons whose pid files are given, when those pids still run one of our daemons:
# SIGTERM to all of them, then SIGKILL to whatever still runs after 10 s.
_slurm_kill_pidfiles() {
  local f pid comm pids=() alive=()
  for f in "$@"; do
    [ -s "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null) || continue
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
    case "$comm" in slurmctld | slurmd | munged) ;; *) continue ;; esac
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  done
  for _ in $(seq 1 100); do
    [ ${#pids[@]} -eq 0 ] && return 0
    alive=()
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
    pids=("${alive[@]+"${alive[@]}"}")
    [ ${#pids[@]} -eq 0 ] && return 0
    sleep 0.1
  done
  _slurm_log "pids ${pids[*]} ignored SIGTERM for 10 s; sending SIGKILL"
  kill -KILL "${pids[@]}" 2>/dev/null || true
}

# Kills what a cluster left running after its daemons were stopped: slurmstepd (marked through the
# environment the daemons were started with) and job processes (they carry SLURM_JOB_ID and the
# LCT_SLURM_DIR exported by slurm_start). The calling shell and its ancestors are spared.
_slurm_kill_strays() {
  local dir=$1 p env victims=() self_chain=" "
  local q=$$
  while [ -n "$q" ] && [ "$q" != 0 ] && [ "$q" != 1 ]; do
    self_chain+="$q "
    q=$(awk '/^PPid:/{print $2}' "/proc/$q/status" 2>/dev/null)
  done
  self_chain+="${BASHPID:-$$} "
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ "$self_chain" == *" $p "* ]] && continue
    env=$({ tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null) || continue
    if grep -qxF "LCT_SLURM_DAEMON_OF=$dir" <<<"$env" ||
      { grep -qxF "LCT_SLURM_DIR=$dir" <<<"$env" && grep -q '^SLURM_JOB_ID=' <<<"$env"; }; then
      victims+=("$p")
    fi
  done
  [ ${#victims[@]} -eq 0 ] && return 0
  _slurm_log "killing ${#victims[@]} leftover job/step process(es) of $dir: ${victims[*]}"
  kill -KILL "${victims[@]}" 2>/dev/null || true
}

# Stops the daemons of run dir $1: jobs first (so nothing is left in slurmstepd), then slurmd(s),
# slurmctld, munged. Files stay for inspection.
_slurm_stop_dir() {
  local dir=$1 conf=$1/slurm.conf
  [ -d "$dir/run" ] || return 0
  if [ -s "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    SLURM_CONF=$conf timeout 10 scancel --quiet --user="$(id -un)" >/dev/null 2>&1 || true
    # Wait (briefly) for running/completing jobs to leave; KillWait is 5 s in our slurm.conf.
    for _ in $(seq 1 40); do
      [ -z "$(SLURM_CONF=$conf timeout 5 squeue -h -t R,CG,S,CF -o %i 2>/dev/null)" ] && break
      sleep 0.25
    done
  fi
  _slurm_kill_pidfiles "$dir"/run/slurmd*.pid
  _slurm_kill_pidfiles "$dir/run/slurmctld.pid" "$dir/run/munged.pid"
  _slurm_kill_strays "$dir"
  rm -f "$dir"/run/*.pid
}

_slurm_base() {
  local base=${LCT_SLURM_BASE:-${TMPDIR:-/tmp}/lct-slurm}
  mkdir -p "$base" && chmod 755 "$base"
  echo "$base"
}

# slurm_reap_stale: stops the clusters of earlier runs whose owner shell is gone (a killed or
# crashed test: daemons, job steps, job processes), and removes their run dirs except the newest
# three (kept for inspection). slurm_start calls it; call it yourself before wiping a work dir
# that a leftover job might still write to.
slurm_reap_stale() {
  local base d owner start keep=3 stale=()
  base=$(_slurm_base)
  for d in "$base"/run.*; do
    [ -d "$d" ] || continue
    read -r owner start <"$d/owner" 2>/dev/null || { owner=0 start=0; }
    if [ "$owner" != 0 ] && [ "$(_slurm_proc_start "$owner")" = "$start" ]; then continue; fi
    if ls "$d"/run/*.pid >/dev/null 2>&1; then
      _slurm_log "stopping leftover cluster $d (owner pid $owner is gone)"
      _slurm_stop_dir "$d"
    fi
    stale+=("$d")
  done
  [ ${#stale[@]} -le $keep ] && return 0
  # Oldest first (by mtime); remove all but the newest $keep.
  # shellcheck disable=SC2012  # our own run.XXXXXX names: plain characters
  ls -1dtr "${stale[@]}" | head -n $((${#stale[@]} - keep)) | while read -r d; do rm -rf "$d"; done
}

# Prints N free TCP ports on 127.0.0.1.
_slurm_free_ports() {
  local n=$1
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$n" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
    return
  fi
  local ports=() p
  while [ ${#ports[@]} -lt "$n" ]; do
    p=$((20000 + RANDOM % 20000))
    (echo >"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    [[ " ${ports[*]} " == *" $p "* ]] || ports+=("$p")
  done
  echo "${ports[*]}"
}

# slurm_logs [LINES]: prints the tail of every daemon log of the current cluster (to stderr).
slurm_logs() {
  local n=${1:-40} f
  [ -n "${LCT_SLURM_DIR:-}" ] || return 0
  for f in "$LCT_SLURM_DIR"/log/*.log; do
    [ -f "$f" ] || continue
    echo "----- $f (last $n lines)" >&2
    tail -n "$n" "$f" >&2
  done
}

# EXIT trap: print logs when the test fails, run the caller's hook, stop the cluster.
_slurm_exit_trap() {
  local rc=$?
  if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
    _slurm_log "test exits with $rc; daemon logs follow"
    slurm_logs 30
  fi
  if declare -F lct_on_exit >/dev/null; then lct_on_exit "$rc" || true; fi
  slurm_stop
  return "$rc"
}

# slurm_start [single|two] [WORKDIR]: starts munged, slurmctld and one (single) or two (two: n1,n2)
# slurmd on this host and waits until sinfo shows every node idle. Exports SLURM_CONF, LCT_SLURM_*.
slurm_start() {
  local mode=${1:-single} work=${2:-}
  case "$mode" in single | two) ;; *)
    echo "slurm_start: mode must be 'single' or 'two', got '$mode'" >&2
    return 2
    ;;
  esac
  [ "$(id -u)" = 0 ] || slurm_skip "slurm_start runs slurmd/slurmctld as root (SlurmUser=root); run the test as root"
  slurm_install
  # A cluster of ours still up (e.g. `single` before `two` in one test): stop it first.
  if [ -n "${LCT_SLURM_DIR:-}" ]; then slurm_stop; fi

  local base
  base=$(_slurm_base)
  slurm_reap_stale
  local dir
  dir=$(mktemp -d "$base/run.XXXXXX")
  # munged wants its socket dir reachable by everyone and its key dir private.
  chmod 755 "$dir"
  mkdir -p "$dir/run" "$dir/log" "$dir/state" "$dir/spool" "$dir/tmp"
  mkdir -m 700 "$dir/munge"
  echo "$$ $(_slurm_proc_start $$)" >"$dir/owner"
  [ -n "$work" ] || work=$dir/work
  mkdir -p "$work"
  work=$(cd "$work" && pwd)

  # Inherited SLURM/SBATCH variables (a test launched inside a real job) would steer our clients
  # to the wrong cluster or job.
  local v
  for v in $(compgen -e | grep -E '^(SLURM_|SBATCH_|SALLOC_|SRUN_|SQUEUE_|SINFO_|SCONTROL_)' || true); do
    unset "$v"
  done

  local host cpus mem_kb mem_mb nnodes ports ctl_port
  host=$(hostname -s)
  cpus=${LCT_SLURM_CPUS:-$(nproc)}
  [ "$cpus" -ge 2 ] || cpus=2
  nnodes=1
  [ "$mode" = two ] && nnodes=2
  mem_kb=$(awk '/^MemTotal:/{print $2}' /proc/meminfo)
  mem_mb=$((mem_kb * 8 / 10 / 1024 / nnodes))
  read -r -a ports <<<"$(_slurm_free_ports $((nnodes + 1)))"
  ctl_port=${ports[0]}

  local conf=$dir/slurm.conf nodes
  {
    echo "# Generated by tests/slurm/slurm_env.sh ($mode) for a test cluster on $host."
    echo "ClusterName=lct"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmctldPort=$ctl_port"
    echo "AuthType=auth/munge"
    echo "CredType=cred/munge"
    # cred_expire is also the delay before a requeued job may start again (default 120 s).
    echo "AuthInfo=socket=$dir/run/munge.sock,cred_expire=${LCT_SLURM_CRED_EXPIRE:-5}"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "StateSaveLocation=$dir/state"
    echo "SlurmdSpoolDir=$dir/spool/%n"
    echo "SlurmctldPidFile=$dir/run/slurmctld.pid"
    echo "SlurmdPidFile=$dir/run/slurmd-%n.pid"
    echo "SlurmctldLogFile=$dir/log/slurmctld.log"
    echo "SlurmdLogFile=$dir/log/slurmd-%n.log"
    echo "SlurmctldDebug=info"
    echo "SlurmdDebug=info"
    echo "PlugStackConfig=$dir/plugstack.conf"
    echo "TmpFS=$dir/tmp"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "JobCompType=jobcomp/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "SlurmdParameters=config_overrides"
    echo "SchedulerType=sched/backfill"
    # Fast turnaround: rescan pending jobs every second (requeued jobs become eligible by time).
    echo "SchedulerParameters=sched_interval=1,bf_interval=1,batch_sched_delay=0"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "JobRequeue=1"
    # Keep finished jobs visible to `scontrol show job` (no slurmdbd, so no sacct).
    echo "MinJobAge=86400"
    echo "KillWait=5"
    echo "InactiveLimit=0"
    echo "SlurmdTimeout=300"
    echo "MessageTimeout=10"
    echo "Waittime=0"
    echo "CompleteWait=0"
    echo "MailProg=/bin/true"
    if [ "$mode" = single ]; then
      echo "NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host Port=${ports[1]} CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN"
      nodes=$host
    else
      echo "NodeName=n1 NodeAddr=127.0.0.1 NodeHostname=$host Port=${ports[1]} CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN"
      echo "NodeName=n2 NodeAddr=127.0.0.1 NodeHostname=$host Port=${ports[2]} CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN"
      nodes=n1,n2
    fi
    echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES"
    [ -z "${LCT_SLURM_EXTRA_CONF:-}" ] || printf '%s\n' "$LCT_SLURM_EXTRA_CONF"
  } >"$conf"
  : >"$dir/plugstack.conf"
  # proctrack/linuxproc + task/none need no cgroups; this keeps slurmd away from /sys/fs/cgroup.
  echo "CgroupAutomount=no" >"$dir/cgroup.conf"

  export SLURM_CONF=$conf
  export LCT_SLURM_DIR=$dir LCT_SLURM_WORKDIR=$work LCT_SLURM_MODE=$mode LCT_SLURM_NODES=$nodes
  export LCT_SLURM_PARTITION=debug LCT_SLURM_CPUS_PER_NODE=$cpus
  # Jobs inherit the submitting environment (sbatch --export=ALL) and run as root here.
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  local btl=self,vader,tcp
  # Two "nodes" on one host: shared memory between them crashes Open MPI, so TCP over loopback.
  [ "$mode" = two ] && btl=self,tcp
  export LCT_SLURM_MPIRUN_FLAGS="--oversubscribe --bind-to none --mca btl $btl --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo"

  trap _slurm_exit_trap EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  # Our own munged (own key and socket); retried with --force if it refuses the directory modes.
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
  chmod 400 "$dir/munge/munge.key"
  local munge_args=(--key-file="$dir/munge/munge.key" --socket="$dir/run/munge.sock"
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munged.seed")
  if ! LCT_SLURM_DAEMON_OF=$dir munged "${munge_args[@]}" 2>>"$dir/log/munged.log"; then
    LCT_SLURM_DAEMON_OF=$dir munged --force "${munge_args[@]}" 2>>"$dir/log/munged.log" ||
      { slurm_logs; echo "slurm_start: munged failed to start (log above)" >&2; return 1; }
  fi

  LCT_SLURM_DAEMON_OF=$dir slurmctld -f "$conf" -i 2>>"$dir/log/slurmctld.log" ||
    { slurm_logs; echo "slurm_start: slurmctld failed to start (log above)" >&2; return 1; }
  local n
  for n in ${nodes//,/ }; do
    mkdir -p "$dir/spool/$n"
    LCT_SLURM_DAEMON_OF=$dir slurmd -f "$conf" -N "$n" 2>>"$dir/log/slurmd-$n.log" ||
      { slurm_logs; echo "slurm_start: slurmd -N $n failed to start (log above)" >&2; return 1; }
  done

  local timeout=${LCT_SLURM_START_TIMEOUT:-60} t0=$SECONDS states=""
  while :; do
    states=$(timeout 10 sinfo -h -N -o '%N %t' 2>/dev/null | sort -u)
    if [ -n "$states" ] && ! grep -qv ' idle$' <<<"$states" &&
      [ "$(wc -l <<<"$states")" -eq "$nnodes" ]; then
      break
    fi
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      echo "slurm_start: nodes not idle after ${timeout}s; sinfo says:" >&2
      echo "${states:-<no answer from slurmctld>}" >&2
      slurm_logs 60
      return 1
    fi
    sleep 0.25
  done
  _slurm_log "cluster up ($mode: $nodes, $cpus CPUs/node) in $((SECONDS - t0))s; SLURM_CONF=$conf"
}

# slurm_stop: stops the current cluster (jobs, slurmd, slurmctld, munged); keeps its files.
# Safe to call twice and when nothing was started.
slurm_stop() {
  [ -n "${LCT_SLURM_DIR:-}" ] || return 0
  _slurm_stop_dir "$LCT_SLURM_DIR"
}

# slurm_sbatch ARGS...: sbatch with --chdir=$LCT_SLURM_WORKDIR; prints the job id.
slurm_sbatch() {
  sbatch --parsable --chdir="$LCT_SLURM_WORKDIR" "$@" | cut -d';' -f1
}

# slurm_job_field JOBID FIELD: prints FIELD (e.g. JobState, Restarts, ExitCode, NodeList) of
# `scontrol show job`; empty when the job is unknown.
slurm_job_field() {
  timeout 10 scontrol show job -o "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n1
}

# slurm_wait_state JOBID STATE TIMEOUT: waits until the job's JobState is STATE (e.g. RUNNING).
slurm_wait_state() {
  local id=$1 want=$2 timeout=$3 t0=$SECONDS st
  while :; do
    st=$(slurm_job_field "$id" JobState)
    [ "$st" = "$want" ] && return 0
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      echo "slurm_wait_state: job $id is '${st:-unknown}', not $want, after ${timeout}s" >&2
      return 124
    fi
    sleep 0.2
  done
}

# slurm_wait_file PATH TIMEOUT: waits until PATH exists.
slurm_wait_file() {
  local path=$1 timeout=$2 t0=$SECONDS
  until [ -e "$path" ]; do
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      echo "slurm_wait_file: $path did not appear within ${timeout}s" >&2
      return 124
    fi
    sleep 0.2
  done
}

_slurm_final_state() {
  case "$1" in
    COMPLETED | FAILED | CANCELLED | TIMEOUT | NODE_FAIL | OUT_OF_MEMORY | BOOT_FAIL | DEADLINE | PREEMPTED) return 0 ;;
    *) return 1 ;;
  esac
}

# slurm_wait_job JOBID TIMEOUT: waits until the job has finished for good (requeues included: a
# requeued job goes back to PENDING and is waited for again). Prints "STATE EXIT RESTARTS" (EXIT is
# the batch script's exit status, 128+N when killed by signal N) and sets LCT_JOB_STATE,
# LCT_JOB_EXIT, LCT_JOB_RESTARTS, LCT_JOB_REASON. Returns 0 when the job finished (whatever its
# state), 124 when TIMEOUT seconds passed first, 1 when slurmctld does not know the job.
slurm_wait_job() {
  local id=$1 timeout=$2 t0=$SECONDS line st ec sig rs reason prev=""
  LCT_JOB_STATE="" LCT_JOB_EXIT="" LCT_JOB_RESTARTS="" LCT_JOB_REASON=""
  while :; do
    line=$(timeout 10 scontrol show job -o "$id" 2>/dev/null | tr ' ' '\n')
    if [ -z "$line" ]; then
      echo "slurm_wait_job: slurmctld does not know job $id" >&2
      LCT_JOB_STATE=UNKNOWN
      echo "UNKNOWN - -"
      return 1
    fi
    st=$(sed -n 's/^JobState=//p' <<<"$line")
    rs=$(sed -n 's/^Restarts=//p' <<<"$line")
    reason=$(sed -n 's/^Reason=//p' <<<"$line")
    ec=$(sed -n 's/^ExitCode=//p' <<<"$line")
    sig=${ec#*:}
    ec=${ec%%:*}
    [ "${sig:-0}" != 0 ] && ec=$((128 + sig))
    # shellcheck disable=SC2034  # results for the caller
    LCT_JOB_STATE=$st LCT_JOB_EXIT=$ec LCT_JOB_RESTARTS=$rs LCT_JOB_REASON=$reason
    if _slurm_final_state "$st"; then
      # A batch script that runs `scontrol requeue` and exits races with its own requeue: only a
      # final state that is still the same a second later (same restart count) counts.
      [ "$prev" = "$st $ec $rs" ] && break
      prev="$st $ec $rs"
      sleep 1
      continue
    fi
    prev=""
    if [ $((SECONDS - t0)) -ge "$timeout" ]; then
      echo "slurm_wait_job: job $id still $st (Reason=$reason, Restarts=$rs) after ${timeout}s" >&2
      echo "$st $ec $rs"
      return 124
    fi
    sleep 0.3
  done
  echo "$st $ec $rs"
}
