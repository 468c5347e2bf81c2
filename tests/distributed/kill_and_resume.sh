#!/usr/bin/env bash
# A rank killed with SIGKILL mid-training ends the whole job, promptly and with a message that
# names it, and the last checkpoint resumes on the same number of ranks bit-identically:
#   1. reference: an uninterrupted run, rank 0 writes its final parameters;
#   2. kill: the same run with checkpoints, the last rank SIGKILLs itself at batch 3 of
#      epoch 2; mpirun must fail within the timeout (no hang) and say which process died;
#   3. resume: from the checkpoint; the final parameters must equal the reference's bytes.
#   kill_and_resume.sh RANKS TEST_EXECUTABLE MPIEXEC [MPIEXEC_FLAGS...]
set -uo pipefail
ranks=$1 exe=$2
shift 2
launch=("$@" -np "$ranks")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
export ADVAUG_KILL_DIR=$dir
run() {
    ADVAUG_KILL_PHASE=$1 timeout 120 "${launch[@]}" "$exe" --no-skip -tc="kill -9*" >"$dir/$1.log" 2>&1
}

run reference || { cat "$dir/reference.log"; echo "FAIL: the reference run failed"; exit 1; }

start=$SECONDS
run kill
status=$?
cat "$dir/kill.log"
if [[ $status -eq 0 ]]; then echo "FAIL: the job with a killed rank exited 0"; exit 1; fi
if [[ $status -eq 124 ]]; then echo "FAIL: the job with a killed rank hung (timeout)"; exit 1; fi
grep -Eqi "signal 9|killed" "$dir/kill.log" || { echo "FAIL: no message names the killed process"; exit 1; }
echo "the job ended $((SECONDS - start)) s after it started, with status $status"
[[ -f "$dir/checkpoint.bin" ]] || { echo "FAIL: no checkpoint before the kill"; exit 1; }

run resume || { cat "$dir/resume.log"; echo "FAIL: the resumed run failed"; exit 1; }
cmp "$dir/reference.params" "$dir/resume.params" || { echo "FAIL: resumed parameters differ"; exit 1; }
echo "PASS: killed rank reported, resumed run bit-identical to the uninterrupted one ($ranks ranks)"
