#!/usr/bin/env bash
# A real single-node SLURM on this machine, for the integration test (tests/test_slurm.py) and for trying
# the slurm profile without a cluster. Needs root and Debian's packages; no systemd.
#
#   scripts/slurm.sh install        apt-get install slurmctld slurmd slurm-client munge (no recommends)
#   scripts/slurm.sh start DIR      write DIR/slurm.conf for localhost, start munged, slurmctld, slurmd
#   scripts/slurm.sh stop DIR       stop the daemons started in DIR, by their PID files
#
# The configuration is linked to /etc/slurm/slurm.conf (and gres.conf): the SLURM plugin's job step removes
# SLURM_CONF from the environment of the `srun` it runs inside each job, so only the default path works.
# An existing /etc/slurm/slurm.conf that is not such a link is never touched: `start` stops instead.
# The node advertises GPUS dummy GPUs (gres with placeholder device files), enough for --gpus requests.
set -euo pipefail

GPUS=${GPUS:-2}
MIN_JOB_AGE=${MIN_JOB_AGE:-300}  # squeue forgets finished jobs after this; the plugin needs >= 3x its first poll
CRED_EXPIRE=${CRED_EXPIRE:-20}  # a requeued job waits this long before it may start again (SLURM: 120)

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        echo "slurm: already installed"
        return
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
}

start() {
    local dir=$1 node
    mkdir -p "$dir"/{state,spool,log,munge,gres}
    dir=$(cd "$dir" && pwd)
    node=$(slurmd -C | head -n 1)  # NodeName=<host> CPUs=... RealMemory=...
    for i in $(seq 0 $((GPUS - 1))); do touch "$dir/gres/gpu$i"; done
    cat >"$dir/slurm.conf" <<CONF
ClusterName=structae
SlurmctldHost=$(hostname -s)
SlurmctldPort=${SLURMCTLD_PORT:-6817}
SlurmdPort=${SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=$CRED_EXPIRE
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MinJobAge=$MIN_JOB_AGE
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
GresTypes=gpu
$node Gres=gpu:$GPUS State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    cat >"$dir/gres.conf" <<CONF
AutoDetect=off
Name=gpu File=$dir/gres/gpu[0-$((GPUS - 1))]
CONF
    mkdir -p /etc/slurm
    for name in slurm.conf gres.conf; do
        if [[ -e /etc/slurm/$name && ! -L /etc/slurm/$name ]]; then
            echo "slurm: /etc/slurm/$name exists and is not a link from this script; not replacing it" >&2
            return 1
        fi
        ln -sfn "$dir/$name" "/etc/slurm/$name"
    done
    munged --force --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
        --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
    slurmctld -f "$dir/slurm.conf"
    slurmd -f "$dir/slurm.conf"
    for _ in $(seq 100); do  # up within a second or two; give it ten
        if sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "slurm: up (/etc/slurm/slurm.conf -> $dir/slurm.conf)"
            return
        fi
        sleep 0.1
    done
    echo "slurm: the node did not become idle; see $dir/log/" >&2
    return 1
}

stop() {
    local dir=$1 pidfile
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        if [[ -f $pidfile ]]; then
            kill "$(cat "$pidfile")" 2>/dev/null || true
            rm -f "$pidfile"
        fi
    done
    for name in slurm.conf gres.conf; do
        if [[ -L /etc/slurm/$name && $(readlink "/etc/slurm/$name") == "$dir/$name" ]]; then
            rm -f "/etc/slurm/$name"
        fi
    done
    echo "slurm: stopped"
}

case ${1:-} in
    install) install ;;
    start) start "${2:?usage: $0 start DIR}" ;;
    stop) stop "${2:?usage: $0 stop DIR}" ;;
    *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
