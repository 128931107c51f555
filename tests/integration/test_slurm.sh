#!/bin/bash
# ckshim-test: as-root
# test_slurm.sh - a real scheduler: a one-node Slurm cluster on this
# machine (Debian's slurm-wlm and munge; munged, slurmctld and slurmd on
# loopback ports with their configuration in a temporary directory,
# started and stopped here), a job submitted by an ordinary user
# ($CKSHIM_TEST_USER) with examples/slurm/ckshim-job.sbatch, requeued with
# `scontrol requeue`: the job must go on from its last checkpoint instead
# of starting over, its journal holding every record once, in order;
# suspended with `scontrol suspend`, its program is checkpointed by the
# user and stays stopped until `scontrol resume`.
#
#   bash tests/integration/test_slurm.sh BUILD_DIR       (as root)
#
# The daemons need root, so tests/run.sh runs this script as root before
# it switches to the test user (the "ckshim-test: as-root" line above).
# Prints SKIP (with the reason) when not root, when Slurm or munge are not
# installed (scripts/install-deps.sh installs them) or when the cluster
# does not start; otherwise one "PASS name" / "FAIL name: why" per check.

set -u
B=${1:-build}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
JOB="$HERE/../../examples/slurm/ckshim-job.sbatch"
USER_NAME=${CKSHIM_TEST_USER:-ckshimtest}

skip() {
    echo "SKIP slurm: $*"
    exit 0
}
[ "$(id -u)" -eq 0 ] || skip "needs root to start slurmctld and slurmd (tests/run.sh runs it as root)"
for t in munged slurmctld slurmd sbatch scontrol squeue; do
    command -v "$t" >/dev/null || skip "$t is not installed (apt-get install slurm-wlm munge; scripts/install-deps.sh)"
done
[ -f "$JOB" ] || skip "no $JOB"
if ! id -u "$USER_NAME" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/bash "$USER_NAME" \
        2>/dev/null || skip "cannot create the test user $USER_NAME"
fi
uid=$(id -u "$USER_NAME")
gid=$(id -g "$USER_NAME")

T=$(mktemp -d /tmp/ckshim-slurm.XXXXXX)
chmod 755 "$T"
. "$HERE/lib.sh"
DAEMONS=()
cleanup() {
    local p
    [ -n "${jobid:-}" ] && scancel "$jobid" 2>/dev/null
    # the job's processes are the test user's: end those started here
    for p in $(pgrep -u "$uid" -f "$T/" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    for p in "${DAEMONS[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${DAEMONS[@]}"; do wait_for 5 gone "$p" || kill -9 "$p" 2>/dev/null; done
    ck_cleanup
}
trap cleanup EXIT

# ---- the cluster: munged, slurmctld, slurmd ----
mkdir -p "$T/munge" "$T/sock" "$T/state" "$T/spool" "$T/log" "$T/job"
chmod 700 "$T/munge"
chmod 755 "$T/sock"
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged -F -f --key-file="$T/munge/munge.key" --socket="$T/sock/munge.sock" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" \
    --seed-file="$T/munge/seed" >"$T/log/munged.out" 2>&1 &
DAEMONS+=($!)

# two free loopback ports
port_free() { ! ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 10000))
        [ "$p" != "${1:-}" ] && port_free "$p" && echo "$p" && return
    done
    echo 26817
}
CPORT=$(pick_port)
DPORT=$(pick_port "$CPORT")
export SLURM_CONF="$T/slurm.conf"
cat >"$SLURM_CONF" <<EOF
ClusterName=ckshim
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CPORT
SlurmdPort=$DPORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/sock/munge.sock,cred_expire=5
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
PlugStackConfig=$T/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
SwitchType=switch/none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
KillWait=10
SlurmdParameters=config_overrides
NodeName=ck1 NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=ck Nodes=ck1 Default=YES MaxTime=INFINITE State=UP
EOF
touch "$T/plugstack.conf"
wait_for 10 test -S "$T/sock/munge.sock" ||
    skip "munged did not start: $(tail -n 2 "$T/log/munged.out" "$T/log/munged.log" 2>/dev/null | tr '\n' ' ')"
slurmctld -D -i >"$T/log/slurmctld.out" 2>&1 &
DAEMONS+=($!)
slurmd -D -N ck1 >"$T/log/slurmd.out" 2>&1 &
DAEMONS+=($!)
node_idle() { [ "$(sinfo -h -n ck1 -o %T 2>/dev/null)" = idle ]; }
wait_for 30 node_idle ||
    skip "the one-node cluster did not come up (node: '$(sinfo -h -n ck1 -o %T 2>&1)'): $(tail -n 3 "$T/log/slurmctld.log" "$T/log/slurmd.log" "$T/log/"*.out 2>/dev/null | tr '\n' ' ' | cut -c1-400)"

# ---- the job, as the test user ----
# coord and the shim where the test user can run them
mkdir -p "$T/bin"
cp "$B/coord" "$B/libshim.so" "$B/ckshim-restore" "$T/bin/"
# The job script too: sbatch runs as the test user, who may not be able to
# read the source tree (a clone in a private directory, as CI's).
cp "$JOB" "$T/bin/ckshim-job.sbatch"
JOB="$T/bin/ckshim-job.sbatch"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
# count.py LOG: one record "N" per 200 ms appended to LOG (held open,
# O_APPEND), and "tick N" on standard output
cat >"$T/job/count.py" <<'EOF'
import sys, time
log = open(sys.argv[1], "a", buffering=1)
n = 0
while True:
    n += 1
    log.write("%d\n" % n)
    print("tick %d" % n, flush=True)
    time.sleep(0.2)
EOF
chown -R "$uid:$gid" "$T/job" "$T/bin"
as_user() {
    (cd "$T/job" && setpriv --reuid="$uid" --regid="$gid" --init-groups \
        env -i HOME="$T/job" USER="$USER_NAME" PATH=/usr/bin:/bin SLURM_CONF="$SLURM_CONF" "$@")
}
OUT="$T/job/slurm.out"
jobid=$(as_user env COORD="$T/bin/coord" CKSHIM_IMAGES="$T/job/img" CKSHIM_EVERY=1s \
    sbatch --parsable --time=10 -o "$OUT" "$JOB" "$PY" "$T/job/count.py" "$T/job/count.log" \
    2>"$T/err")
if ! [[ $jobid =~ ^[0-9]+$ ]]; then
    fail slurm_job_runs "sbatch as $USER_NAME failed: $jobid $(cat "$T/err")"
    exit 0
fi
job_state() { squeue -h -j "$jobid" -o %T 2>/dev/null; }
job_gone() { [ -z "$(job_state)" ]; }
images() { ls "$T/job/img" 2>/dev/null | grep -c '^ckpt-.*\.img$'; }
two_images() { [ "$(images)" -ge 2 ]; }
last_tick() { grep -o '^tick [0-9]*' "$OUT" 2>/dev/null | tail -n 1 | cut -d' ' -f2; }
if wait_for 40 two_images && [ "$(job_state)" = RUNNING ]; then
    pass slurm_job_checkpoints
else
    fail slurm_job_checkpoints "state '$(job_state)', $(images) images; $(tail -n 3 "$OUT" 2>/dev/null | tr '\n' ' ')"
    exit 0
fi

# ---- scontrol suspend (SIGSTOP to every process of the job): the user
# checkpoints the suspended program, which stays stopped and never runs
# until scontrol resume ----
prog=
for p in $(pgrep -u "$uid" -f count.py); do
    case $(readlink "/proc/$p/exe") in */python3*) prog=$p ;; esac
done
tstate() { awk '/^State:/{print $2}' "/proc/$1/status" 2>/dev/null; }
prog_stopped() { [ "$(tstate "$prog")" = T ]; }
if [ -z "$prog" ]; then
    fail slurm_suspended_checkpoint "no program process found"
elif ! scontrol suspend "$jobid" 2>"$T/err" || ! wait_for 10 prog_stopped; then
    fail slurm_suspended_checkpoint "scontrol suspend: state $(tstate "$prog"): $(cat "$T/err")"
    scontrol resume "$jobid" 2>/dev/null
else
    t0=$(last_tick)
    if as_user "$T/bin/coord" checkpoint "$prog" -o "$T/job/suspended.img" >"$T/out" 2>"$T/err" &&
        prog_stopped && as_user "$T/bin/coord" inspect "$T/job/suspended.img" 2>&1 |
        grep -q "stopped *by Stopped (signal)"; then
        sleep 1
        if prog_stopped && [ "$(last_tick)" = "$t0" ] && [ "$(job_state)" = SUSPENDED ]; then
            pass slurm_suspended_checkpoint
        else
            fail slurm_suspended_checkpoint "ran while suspended: tick $t0 -> $(last_tick), state $(tstate "$prog"), job $(job_state)"
        fi
    else
        fail slurm_suspended_checkpoint "state $(tstate "$prog")"
    fi
    scontrol resume "$jobid" 2>"$T/err" || fail slurm_resume "$(cat "$T/err")"
    moved() { [ "$(last_tick)" != "$t0" ]; }
    if wait_for 10 moved && [ "$(job_state)" = RUNNING ]; then
        pass slurm_resumed_goes_on
    else
        fail slurm_resumed_goes_on "tick $t0 -> $(last_tick), job $(job_state)"
    fi
fi
sleep 0.5
before=$(last_tick)

# ---- scontrol requeue: the job runs again and goes on from its last image ----
scontrol requeue "$jobid" 2>"$T/err" || fail slurm_requeue "$(cat "$T/err")"
pending() { [ "$(job_state)" = PENDING ]; }
requeued() { pending || grep -q 'run 2' "$OUT" 2>/dev/null; }
wait_for 20 requeued || fail slurm_requeue "job state '$(job_state)' after scontrol requeue"
# a requeued job is eligible again after cred_expire seconds (BeginTime;
# 120 by default, 5 here): until then its old credential is refused
resumed() { sed -n '/run 2/,$p' "$OUT" 2>/dev/null | grep -q '^tick'; }
if wait_for 60 resumed; then
    pass slurm_requeue
    # the first tick of the second run: where its image left off, not 1
    first=$(sed -n '/run 2/,$p' "$OUT" | grep -m1 -o '^tick [0-9]*' | cut -d' ' -f2)
    if grep -q 'run: resuming from' "$OUT" && [ -n "$first" ] && [ "$first" -gt 1 ] &&
        [ "$first" -le "$((before + 1))" ]; then
        pass slurm_goes_on_from_checkpoint
    else
        fail slurm_goes_on_from_checkpoint "second run began at tick '${first}' (ticked to $before before the requeue)"
    fi
    sleep 1
    if awk '$1 != NR { bad = 1 } END { exit bad }' "$T/job/count.log" &&
        [ "$(wc -l <"$T/job/count.log")" -gt "$before" ]; then
        pass slurm_journal_exactly_once
    else
        fail slurm_journal_exactly_once "$(tr '\n' ' ' <"$T/job/count.log" | cut -c1-200)"
    fi
else
    fail slurm_requeue "no resumed second run (state '$(job_state)'): $(tail -n 4 "$OUT" 2>/dev/null | tr '\n' ' ')"
fi

# ---- the time-limit warning (--signal=B:USR1@N; sent here at once with
# scancel --batch): a last checkpoint, the job requeues itself, and the
# third run goes on from exactly where the second stopped ----
scancel --batch --signal=USR1 "$jobid" 2>"$T/err" || fail slurm_time_limit "$(cat "$T/err")"
third() { grep -q 'run 3' "$OUT" 2>/dev/null; }
ticked3() { sed -n '/run 3/,$p' "$OUT" | grep -q '^tick'; }
stopped_for_limit() { grep -q 'requeueing job' "$OUT" 2>/dev/null; }
if wait_for 30 stopped_for_limit; then
    last2=$(sed -n '/run 2/,/requeueing job/p' "$OUT" | grep -o '^tick [0-9]*' | tail -n 1 | cut -d' ' -f2)
    # (the script's own scontrol requeue: pending again, then started now)
    wait_for 20 pending
    if wait_for 60 third && wait_for 20 ticked3; then
        first3=$(sed -n '/run 3/,$p' "$OUT" | grep -m1 -o '^tick [0-9]*' | cut -d' ' -f2)
        if [ "$first3" = "$((last2 + 1))" ]; then
            pass slurm_time_limit_no_work_lost
        else
            fail slurm_time_limit_no_work_lost "third run began at tick $first3, the second ended at $last2"
        fi
    else
        fail slurm_time_limit_no_work_lost "no third run: $(tail -n 4 "$OUT" | tr '\n' ' ')"
    fi
else
    fail slurm_time_limit_no_work_lost "the job did not requeue itself: $(tail -n 4 "$OUT" | tr '\n' ' ')"
fi
scancel "$jobid" 2>/dev/null
wait_for 20 job_gone
jobid=
exit 0
