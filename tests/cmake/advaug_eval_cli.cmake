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
#   version          --version exits 0 and prints the version and the kernel backend
#   end_to_end       fgsm-rs.npz against the baseline plain.npz on 200 Fashion-MNIST test
#                    images, FGSM and PGD, two corruptions, 4 examples: every report file exists
#   compare          --compare: a third model in the same report, with the baseline's mCE
#   autoattack_samples --autoattack-samples: refused without AutoAttack and beyond --samples;
#                    a run on 50 samples with AutoAttack on 20 reports 20 and says so
#   model_path ... baseline_no_metadata
#                    a user mistake: exit status 1 or 2 (never a crash), exactly one line on
#                    stderr, "advaug-eval: <message>", that names the mistake, and nothing
#                    evaluated before it (the mistake is found up front)
#   out_not_writable an existing --out folder the user cannot write to. As root (CI) the run
#                    drops to nobody with setpriv, since root writes anywhere; without setpriv
#                    the case prints "advaug_eval_cli_skip:" and ctest counts it as skipped

foreach(var IN ITEMS CASE EVAL WORK_DIR)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "advaug_eval_cli.cmake: -D${var}=... is required")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# Runs advaug-eval with the given arguments; sets rc, out and err in the caller.
function(run_eval)
    # EVAL may be a list: a command that runs the tool as another user, then the tool.
    execute_process(COMMAND ${EVAL} ${ARGN}
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
# containing every string in ARGN, and no evaluation before it; sets rc, out and err.
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
    if(out MATCHES "(^|\n)evaluated ")
        fail("the mistake was found only after an evaluation")
    endif()
    message(STATUS "ok, exit status ${rc}: ${err}")
    # For further checks by the case.
    set(rc "${rc}" PARENT_SCOPE)
    set(out "${out}" PARENT_SCOPE)
    set(err "${err}" PARENT_SCOPE)
endfunction()

# Copies the model file `in` to `out` without its "__advaug__.*" metadata, as
# io::save_parameters writes a model's parameters: the arrays say the widths, nothing says the
# activations. Written with Python's zipfile (libzip's consistency check refuses the zip that
# `cmake -E tar --format=zip` writes); without python3 the case is skipped.
function(strip_metadata in out)
    find_program(PYTHON3 python3)
    if(NOT PYTHON3)
        message("advaug_eval_cli_skip: python3 is missing, so no file without metadata can be "
                "written")
        set(skipped TRUE PARENT_SCOPE)
        return()
    endif()
    execute_process(COMMAND "${PYTHON3}" -c [[
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w") as dst:
    for name in src.namelist():
        if not name.startswith("__advaug__."):
            dst.writestr(name, src.read(name))
]] "${in}" "${out}" RESULT_VARIABLE result ERROR_VARIABLE error)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "advaug_eval_cli (${CASE}): cannot write ${out}: ${error}")
    endif()
    set(skipped FALSE PARENT_SCOPE)
endfunction()

# Writes `rows` rows of 784 features (all `value`) and a label 0 to `path`, after `header`.
function(write_pixel_csv path value rows header)
    string(REPEAT "${value}," 784 row)
    set(text "${header}")
    foreach(i RANGE 1 ${rows})
        string(APPEND text "${row}0\n")
    endforeach()
    file(WRITE "${path}" "${text}")
endfunction()

set(plain "${MODELS}/plain.npz")
set(robust "${MODELS}/fgsm-rs.npz")
if(NOT CASE MATCHES "^(help|version)$")
    foreach(f IN ITEMS "${plain}" "${robust}")
        if(NOT EXISTS "${f}")
            message(FATAL_ERROR "advaug_eval_cli (${CASE}): the fixture model '${f}' is missing; "
                                "it is written by the test advaug_eval_models")
        endif()
    endforeach()
endif()

if(CASE STREQUAL "version")
    # The version and the kernel library (backend/info.hpp), even without the required options.
    run_eval(--version)
    if(NOT rc EQUAL 0)
        fail("--version should exit with status 0")
    endif()
    if(NOT out MATCHES "^advaug-eval [0-9]+\\.[0-9]+\\.[0-9]+\nkernels: [^\n]+ \\(ADVAUG_BACKEND (onednn|blas|none)\\)")
        fail("--version should print the version and the kernels, got:\n${out}")
    endif()

elseif(CASE STREQUAL "help")
    run_eval(--help)
    if(NOT rc EQUAL 0)
        fail("--help should exit with status 0")
    endif()
    foreach(option IN ITEMS --model --arch --activation --data --format --labels --csv-header
                            --domain --samples
                            --attacks --autoattack-samples --eps --pgd-steps --corruptions --families --baseline --label
                            --class-names --threads --seed --progress --examples --out)
        if(NOT out MATCHES "(^|[ ,])${option}[ =:\n]")
            fail("--help does not mention ${option}")
        endif()
    endforeach()

elseif(CASE STREQUAL "end_to_end")
    set(report "${WORK_DIR}/report")
    run_eval(--model "${robust}" --baseline "${plain}" --samples 200 --attacks fgsm,pgd
             --eps 0,0.05,0.1 --pgd-steps 10 --corruptions fog,shot_noise --examples 4
             --families rotation:0,10 --threads 2 --out "${report}")
    if(NOT rc EQUAL 0)
        fail("the run should succeed")
    endif()
    if(NOT err STREQUAL "")
        fail("a successful run should print nothing on stderr")
    endif()
    if(NOT out MATCHES "advaug: evaluated plain: 200 samples in ")
        fail("the run should report the evaluation's progress")
    endif()
    foreach(file IN ITEMS README.md results.json results.csv accuracy_vs_eps.svg corruptions.svg
                          worst_case_rotation.svg
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

elseif(CASE STREQUAL "family_spec")
    # An unknown family, a budget that is not a number and one given twice: each refused up
    # front, before the evaluation starts.
    set(EVAL_ARGS --model "${plain}" --families spin:1 --out "${WORK_DIR}/report")
    expect_error(2 "--families" "unknown perturbation family 'spin'" "rotation, translation")
    set(EVAL_ARGS --model "${plain}" --families rotation:5,x --out "${WORK_DIR}/report")
    expect_error(2 "--families: rotation budget 'x' must be a finite number >= 0")
    set(EVAL_ARGS --model "${plain}" --families rotation:5,5 --out "${WORK_DIR}/report")
    expect_error(2 "--families: rotation budget 5 is given twice")
    set(EVAL_ARGS --model "${plain}" --families rotation --out "${WORK_DIR}/report")
    expect_error(2 "--families: 'rotation' must be FAMILY:BUDGET,BUDGET,...")

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

elseif(CASE STREQUAL "out_not_writable")
    # A folder that exists but takes no files. Root writes anywhere, so as root the tool runs
    # as nobody, from a folder of its own (the build tree may not be readable by nobody).
    execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
    set(as_user "")
    if(uid STREQUAL "0")
        find_program(SETPRIV setpriv)
        if(NOT SETPRIV)
            message("advaug_eval_cli_skip: running as root and setpriv (util-linux) is missing, "
                    "so no folder is unwritable")
            return()
        endif()
        set(as_user "${SETPRIV}" --reuid=65534 --regid=65534 --clear-groups)
    endif()
    string(RANDOM LENGTH 8 tag)
    set(box "/tmp/advaug_eval_out_not_writable_${tag}")
    file(REMOVE_RECURSE "${box}")
    file(MAKE_DIRECTORY "${box}/report")
    file(COPY "${EVAL}" "${plain}" DESTINATION "${box}")
    get_filename_component(eval_name "${EVAL}" NAME)
    file(CHMOD "${box}" DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
         GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    file(CHMOD "${box}/report" DIRECTORY_PERMISSIONS OWNER_READ OWNER_EXECUTE
         GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    file(CHMOD "${box}/${eval_name}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
         GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
    file(CHMOD "${box}/plain.npz" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    set(EVAL ${as_user} "${box}/${eval_name}")
    set(EVAL_ARGS --model "${box}/plain.npz" --samples 10 --out "${box}/report")
    expect_error(2 "--out" "${box}/report" "not writable")
    file(GLOB left "${box}/report/*" "${box}/report/.*")
    file(CHMOD "${box}/report" DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE)
    file(REMOVE_RECURSE "${box}")
    if(left)
        message(FATAL_ERROR "advaug_eval_cli (${CASE}): the refused run left ${left}")
    endif()

elseif(CASE STREQUAL "examples_over_samples")
    set(EVAL_ARGS --model "${plain}" --examples 5000 --samples 100 --out "${WORK_DIR}/report")
    expect_error(2 "--examples 5000" "--samples 100")

elseif(CASE STREQUAL "autoattack_samples")
    # AutoAttack on the first samples only: refused without AutoAttack and beyond --samples;
    # otherwise the report gives its share of those samples and says how many they were.
    set(EVAL_ARGS --model "${plain}" --attacks pgd --autoattack-samples 20 --out "${WORK_DIR}/report")
    expect_error(2 "--autoattack-samples 20" "runs no AutoAttack")
    set(EVAL_ARGS --model "${plain}" --attacks autoattack --autoattack-samples 200 --samples 100
                  --out "${WORK_DIR}/report")
    expect_error(2 "--autoattack-samples 200" "--samples 100")
    run_eval(--model "${plain}" --samples 50 --attacks pgd,autoattack --autoattack-samples 20 --eps 0,0.1
             --corruptions none --progress 0 --out "${WORK_DIR}/report")
    if(NOT rc EQUAL 0)
        fail("the run failed")
    endif()
    if(NOT out MATCHES "autoattack: on the first 20 samples only")
        fail("stdout does not say AutoAttack ran on the first 20 samples")
    endif()
    file(READ "${WORK_DIR}/report/results.json" json)
    foreach(part IN ITEMS "\"attack\": \"pgd-20\", \"samples\": 50" "\"attack\": \"autoattack\", \"samples\": 20")
        string(FIND "${json}" "${part}" at)
        if(at EQUAL -1)
            fail("results.json lacks ${part}")
        endif()
    endforeach()
    file(READ "${WORK_DIR}/report/README.md" readme)
    string(FIND "${readme}" "autoattack on the first 20 of 50 samples" at)
    if(at EQUAL -1)
        fail("README.md does not say AutoAttack ran on the first 20 of 50 samples")
    endif()

elseif(CASE STREQUAL "csv_out_of_domain")
    # Raw 0..255 pixels for a model of [0, 1] inputs: refused, with the range seen.
    string(REPEAT "0," 784 black)
    write_pixel_csv("${WORK_DIR}/raw.csv" 255 3 "${black}0\n")
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/raw.csv" --attacks fgsm
                  --out "${WORK_DIR}/report")
    expect_error(1 "raw.csv" "[0, 255]" "[0, 1]" "--domain" "scale")
    # Stated as the model's domain, the same file passes the check (and is evaluated).
    run_eval(--model "${plain}" --data "${WORK_DIR}/raw.csv" --domain 0,255 --attacks fgsm
             --eps 0,1 --out "${WORK_DIR}/ok")
    if(NOT rc EQUAL 0)
        fail("--domain 0,255 should accept 0..255 features")
    endif()
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/raw.csv" --domain 1,0
                  --out "${WORK_DIR}/report")
    expect_error(2 "--domain" "1,0")

elseif(CASE STREQUAL "no_activations")
    # The fixture's parameters without its metadata, as io::save_parameters writes a model:
    # nothing in the file says ReLU or tanh.
    strip_metadata("${plain}" "${WORK_DIR}/params.npz")
    if(skipped)
        return()
    endif()
    set(EVAL_ARGS --model "${WORK_DIR}/params.npz" --arch mlp --out "${WORK_DIR}/report")
    expect_error(1 "params.npz" "activations" "--activation")
    set(EVAL_ARGS --model "${plain}" --activation tanh --out "${WORK_DIR}/report")
    expect_error(1 "--activation tanh" "plain.npz" "relu")
    # Stated, the file is evaluated with the activation given.
    run_eval(--model "${WORK_DIR}/params.npz" --arch mlp --activation relu --samples 20
             --attacks none --corruptions none --out "${WORK_DIR}/ok")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "evaluated params \\(mlp 784-256-256-10\\)")
        fail("--arch mlp --activation relu should evaluate the file")
    endif()
    run_eval(--model "${WORK_DIR}/params.npz" --arch mlp --activation tanh --samples 20
             --attacks none --corruptions none --out "${WORK_DIR}/ok")
    if(NOT rc EQUAL 0 OR NOT out MATCHES "evaluated params \\(mlp 784-256-256-10 \\(tanh\\)\\)")
        fail("--arch mlp --activation tanh should evaluate the file as a tanh network")
    endif()

elseif(CASE STREQUAL "special_files")
    # /dev/zero would be read until memory runs out; a FIFO without a writer blocks open().
    set(EVAL_ARGS --model "${plain}" --data /dev/zero --format csv --out "${WORK_DIR}/report")
    expect_error(2 "--data" "/dev/zero" "character device")
    find_program(MKFIFO mkfifo)
    if(MKFIFO)
        execute_process(COMMAND "${MKFIFO}" "${WORK_DIR}/model.npz")
        set(EVAL_ARGS --model "${WORK_DIR}/model.npz" --out "${WORK_DIR}/report")
        expect_error(2 "--model" "model.npz" "FIFO")
    endif()

elseif(CASE STREQUAL "csv_messages")
    # A NaN cell: the advice is one the command line can follow (no C++ option).
    write_pixel_csv("${WORK_DIR}/nan.csv" 0.5 2 "")
    string(REPEAT "0.5," 783 row)
    file(APPEND "${WORK_DIR}/nan.csv" "${row}nan,1\n")
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/nan.csv" --out "${WORK_DIR}/report")
    expect_error(1 "nan.csv" "line 3, column 784" "not a finite number")
    if(err MATCHES "csv_options|allow_non_finite|--csv-header")
        fail("the message should not suggest a C++ option or --csv-header")
    endif()
    # An error far from the first line says nothing about a header.
    write_pixel_csv("${WORK_DIR}/late.csv" 0.5 5 "")
    string(REPEAT "0.5," 783 row)
    file(APPEND "${WORK_DIR}/late.csv" "${row}oops,1\n")
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/late.csv" --out "${WORK_DIR}/report")
    expect_error(1 "late.csv" "line 6, column 784" "oops")
    if(err MATCHES "--csv-header")
        fail("an error on line 6 should not suggest --csv-header")
    endif()
    # Column names on the first line: then --csv-header is the advice.
    string(REPEAT "x," 784 names)
    write_pixel_csv("${WORK_DIR}/named.csv" 0.5 2 "${names}label\n")
    set(EVAL_ARGS --model "${plain}" --data "${WORK_DIR}/named.csv" --out "${WORK_DIR}/report")
    expect_error(1 "named.csv" "line 1" "--csv-header")

elseif(CASE STREQUAL "compare")
    # Three models in one report: the model, a compared one (here a copy of the robust model
    # under another name) and the baseline, each with the baseline's mCE.
    file(COPY_FILE "${robust}" "${WORK_DIR}/second.npz")
    set(report "${WORK_DIR}/report")
    run_eval(--model "${robust}" --compare "${WORK_DIR}/second.npz" --baseline "${plain}" --samples 100
             --attacks pgd --eps 0,0.1 --pgd-steps 5 --corruptions fog,shot_noise --threads 2 --out "${report}")
    if(NOT rc EQUAL 0)
        fail("the run should succeed: ${err}")
    endif()
    file(READ "${report}/results.json" json)
    string(JSON count LENGTH "${json}" models)
    if(NOT count EQUAL 3)
        fail("the report should hold 3 models, holds ${count}")
    endif()
    foreach(i 0 1 2)
        string(JSON name GET "${json}" models ${i} model)
        string(JSON mce GET "${json}" models ${i} absolute_mce)
        list(APPEND names "${name}")
        list(APPEND mces "${mce}")
    endforeach()
    if(NOT names STREQUAL "fgsm-rs;second;plain")
        fail("the models should be fgsm-rs, second, plain in that order, are ${names}")
    endif()
    list(GET mces 0 first_mce)
    list(GET mces 1 second_mce)
    list(GET mces 2 base_mce)
    if(NOT first_mce STREQUAL second_mce OR NOT base_mce EQUAL 1)
        fail("equal models should get equal mCEs and the baseline 1, got ${mces}")
    endif()
    if(NOT out MATCHES "second")
        fail("the summary should list the compared model")
    endif()

elseif(CASE STREQUAL "baseline_no_metadata")
    strip_metadata("${plain}" "${WORK_DIR}/base.npz")
    if(skipped)
        return()
    endif()
    set(EVAL_ARGS --model "${plain}" --baseline "${WORK_DIR}/base.npz" --out "${WORK_DIR}/report")
    expect_error(1 "--baseline" "base.npz" "metadata")
    if(err MATCHES "--model")
        fail("the message is about --baseline, not --model")
    endif()

else()
    message(FATAL_ERROR "advaug_eval_cli.cmake: unknown CASE '${CASE}'")
endif()

# No case may leave a report behind where it failed.
if(CASE MATCHES "^(model_path|corruption_name|csv_mismatch|arch_mismatch|negative_eps|missing_out|examples_over_samples|csv_out_of_domain|no_activations|special_files|csv_messages|baseline_no_metadata)$"
   AND EXISTS "${WORK_DIR}/report")
    message(FATAL_ERROR "advaug_eval_cli (${CASE}): a failed run left '${WORK_DIR}/report' behind")
endif()
