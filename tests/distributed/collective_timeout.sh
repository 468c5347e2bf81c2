#!/usr/bin/env bash
# A rank that hangs without dying (here: sleeps 4 s before an all-reduce) must not hang the job:
# the others give up at the communicator's timeout (1 s in the test), print which collective
# they waited for, on which rank and for how long, and MPI_Abort ends the whole job.
#   collective_timeout.sh RANKS TEST_EXECUTABLE MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
ranks=$1 exe=$2
shift 2
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
timeout 60 "$@" -np "$ranks" "$exe" --no-skip -tc="a rank that hangs*" >"$log" 2>&1
status=$?
cat "$log"
elapsed=$((SECONDS - start))
if [[ $status -eq 0 ]]; then echo "FAIL: the job with a hanging rank exited 0"; exit 1; fi
if [[ $status -eq 124 ]]; then echo "FAIL: the job with a hanging rank hung (no timeout)"; exit 1; fi
grep -Eq "distributed::communicator: MPI_Iallreduce timed out on rank 0 of $ranks after 1(\.[0-9]+)? s \(timeout 1 s\)" "$log" ||
    { echo "FAIL: no message names the collective, rank 0 and the seconds waited"; exit 1; }
if ((elapsed > 30)); then echo "FAIL: the job took $elapsed s to end"; exit 1; fi
echo "PASS: the job ended after $elapsed s with status $status, the timeout named"
