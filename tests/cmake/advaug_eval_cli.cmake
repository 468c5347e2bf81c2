# Runs one case of advaug-eval's command-line tests (cmake -P), registered in
# tests/CMakeLists.txt:
#
#   cmake -DCASE=<case> -DEVAL=<advaug-eval> -DMODELS=<dir> -DWORK_DIR=<dir> -P advaug_eval_cli.cmake
#
# MODELS holds plain.npz and fgsm-rs.npz, saved by `fashion_mnist_ada --quick --report MODELS`
# (the fixture test). WORK_DIR is emptied first and holds what the case writes.
#
# Cases:
#   help             --help exits 0 and names every option
#   end_to_end       fgsm-rs.npz against the baseline plain.npz on 200 Fashion-MNIST test
#                    images, FGSM and PGD, two corruptions, 4 examples: every report file exists
#   model_path ... missing_out
#                    a user mistake: exit status 1 or 2 (never a crash) and exactly one line on
#                    stderr, "advaug-eval: <message>", that names the mistake

foreach(var IN ITEMS CASE EVAL WORK_DIR)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "advaug_eval_cli.cmake: -D${var}=... is required")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs advaug-eval with the given arguments; sets rc, out and err in the caller.
function(run_eval)
    execute_process(COMMAND "${EVAL}" ${ARGN}
        RESULT_VARIABLE result OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr
        WORKING_DIRECTORY "${WORK_DIR}"
        TIMEOUT 120)
    set(rc "${result}" PARENT_SCOPE)
    set(out "${stdout}" PARENT_SCOPE)
    set(err "${stderr}" PARENT_SCOPE)
endfunction()

function(fail what)
    message(FATAL_ERROR "advaug_eval_cli (${CASE}): ${what}\n--- exit status: ${rc}\n"
                        "--- stdout:\n${out}\n--- stderr:\n${err}")
endfunction()

# A user mistake: exit status `status`, one line on stderr starting with "advaug-eval: ",
# containing every string in ARGN.
function(expect_error status)
    run_eval(${EVAL_ARGS})
    if(NOT rc STREQUAL "${status}")
        fail("expected exit status ${status}")
    endif()
    if(NOT err MATCHES "^advaug-eval: [^\n]+\n$")
        fail("expected exactly one line on stderr starting with 'advaug-eval: '")
    endif()
    foreach(part IN LISTS ARGN)
        string(FIND "${err}" "${part}" at)
        if(at EQUAL -1)
            fail("the message does not mention '${part}'")
        endif()
    endforeach()
    message(STATUS "ok, exit status ${rc}: ${err}")
endfunction()

set(plain "${MODELS}/plain.npz")
set(robust "${MODELS}/fgsm-rs.npz")
if(NOT CASE STREQUAL "help")
    foreach(f IN ITEMS "${plain}" "${robust}")
        if(NOT EXISTS "${f}")
            message(FATAL_ERROR "advaug_eval_cli (${CASE}): the fixture model '${f}' is missing; "
                                "it is written by the test advaug_eval_models")
        endif()
    endforeach()
endif()

if(CASE STREQUAL "help")
    run_eval(--help)
    if(NOT rc EQUAL 0)
        fail("--help should exit with status 0")
    endif()
    foreach(option IN ITEMS --model --arch --data --format --labels --csv-header --samples
                            --attacks --eps --pgd-steps --corruptions --baseline --label
                            --class-names --threads --seed --examples --out)
        if(NOT out MATCHES "(^|[ ,])${option}[ =:\n]")
            fail("--help does not mention ${option}")
        endif()
    endforeach()

elseif(CASE STREQUAL "end_to_end")
    set(report "${WORK_DIR}/report")
    run_eval(--model "${robust}" --baseline "${plain}" --samples 200 --attacks fgsm,pgd
             --eps 0,0.05,0.1 --pgd-steps 10 --corruptions fog,shot_noise --examples 4
             --threads 2 --out "${report}")
    if(NOT rc EQUAL 0)
        fail("the run should succeed")
    endif()
    if(NOT err STREQUAL "")
        fail("a successful run should print nothing on stderr")
    endif()
    foreach(file IN ITEMS README.md results.json results.csv accuracy_vs_eps.svg corruptions.svg
                          confusion_fgsm-rs.svg confusion_plain.svg examples.png
                          examples_clean.npy examples_adversarial.npy examples_labels.npy)
        if(NOT EXISTS "${report}/${file}")
            fail("the report has no ${file}")
        endif()
    endforeach()
    file(READ "${report}/README.md" readme)
    file(READ "${report}/results.json" json)
    file(READ "${report}/results.csv" csv)
    # (README.md escapes Markdown: shot_noise is written shot\_noise there.)
    foreach(part IN ITEMS "| fgsm-rs |" "| plain |" "pgd-10" "relative mCE" "| fog |")
        string(FIND "${readme}" "${part}" at)
        if(at EQUAL -1)
            fail("README.md does not mention '${part}'")
        endif()
    endforeach()
    foreach(part IN ITEMS "\"samples\": 200" "\"attack\": \"fgsm\"" "\"attack\": \"pgd-10\"")
        string(FIND "${json}" "${part}" at)
        if(at EQUAL -1)
            fail("results.json does not hold '${part}'")
        endif()
    endforeach()
    foreach(part IN ITEMS "fgsm-rs,corruption,shot_noise,5," "plain,corruption,fog,1,"
                          "plain,attack,pgd-10,0.1,")
        string(FIND "${csv}" "${part}" at)
        if(at EQUAL -1)
            fail("results.csv does not hold '${part}'")
        endif()
    endforeach()
    # The baseline is the reference of the relative mCE: it scores exactly 1.
    if(NOT json MATCHES "\"model\": \"plain\"[^}]*\"relative_mce\": 1,")
        fail("the baseline's relative_mce should be 1")
    endif()
    message(STATUS "ok: ${out}")

elseif(CASE STREQUAL "model_path")
    set(EVAL_ARGS --model "${WORK_DIR}/missing.npz" --out "${WORK_DIR}/report")
    expect_error(2 "missing.npz")

elseif(CASE STREQUAL "corruption_name")
    set(EVAL_ARGS --model "${plain}" --corruptions fog,spatterz --out "${WORK_DIR}/report")
    expect_error(2 "spatterz")

elseif(CASE STREQUAL "csv_mismatch")
    # 30 features and a label per row, as the breast cancer table; the model takes 784 inputs.
    set(row "")
    foreach(i RANGE 1 30)
        string(APPEND row "0.${i},")
    endforeach()
    file(WRITE "${WORK_DIR}/tiny.csv" "${row}0\n${row}1\n${row}1\n")
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/tiny.csv" --out "${WORK_DIR}/report")
    expect_error(1 "784" "30 features")

elseif(CASE STREQUAL "arch_mismatch")
    # The file holds the MLP; its arrays do not fit the CNN.
    set(EVAL_ARGS --model "${plain}" --arch cnn --samples 10 --out "${WORK_DIR}/report")
    expect_error(1 "plain.npz")

elseif(CASE STREQUAL "negative_eps")
    set(EVAL_ARGS --model "${plain}" --eps -1 --out "${WORK_DIR}/report")
    expect_error(2 "--eps" "-1")

elseif(CASE STREQUAL "missing_out")
    set(EVAL_ARGS --model "${plain}")
    expect_error(2 "--out")

else()
    message(FATAL_ERROR "advaug_eval_cli.cmake: unknown CASE '${CASE}'")
endif()

# No case may leave a report behind where it failed.
if(CASE MATCHES "^(model_path|corruption_name|csv_mismatch|arch_mismatch|negative_eps|missing_out)$"
   AND EXISTS "${WORK_DIR}/report")
    message(FATAL_ERROR "advaug_eval_cli (${CASE}): a failed run left '${WORK_DIR}/report' behind")
endif()
