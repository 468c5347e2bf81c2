# The main example's --checkpoint and --resume, run as a user runs them:
#
#   cmake -DEXAMPLE=<fashion_mnist_ada> -DWORK_DIR=<scratch dir, wiped first> -P example_resume.cmake
#
# 1. a --quick run of one epoch with --checkpoint writes a checkpoint per model;
# 2. the same run with --resume --epochs 2 must say that it resumed each model at epoch 2 and
#    train only that epoch.

cmake_minimum_required(VERSION 3.21)

foreach(var EXAMPLE WORK_DIR)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "example_resume: -D${var}=... is required")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(common --quick --train-samples 2000 --test-samples 500 --report "${WORK_DIR}/report" --report-samples 50 --log-every 0
           --checkpoint "${WORK_DIR}/run")

function(run_example out)
    execute_process(COMMAND "${EXAMPLE}" ${common} ${ARGN}
        RESULT_VARIABLE rc OUTPUT_VARIABLE output ERROR_VARIABLE output)
    message("${output}")
    if(NOT rc EQUAL 0)
        message(FATAL_ERROR "example_resume: fashion_mnist_ada ${ARGN} failed (${rc})")
    endif()
    set(${out} "${output}" PARENT_SCOPE)
endfunction()

run_example(first)
foreach(file run.plain run.fgsm-rs)
    if(NOT EXISTS "${WORK_DIR}/${file}")
        message(FATAL_ERROR "example_resume: --checkpoint wrote no ${WORK_DIR}/${file}")
    endif()
endforeach()
if(first MATCHES "resumed from|resuming at")
    message(FATAL_ERROR "example_resume: the run without --resume says it resumed")
endif()

run_example(second --resume --epochs 2)
foreach(model plain fgsm-rs)
    if(NOT second MATCHES "resumed from [^\n]*run\\.${model} at epoch 2, batch 1")
        message(FATAL_ERROR "example_resume: the --resume run does not say it resumed ${model} at epoch 2")
    endif()
endforeach()
if(second MATCHES "epoch 1/2")
    message(FATAL_ERROR "example_resume: the --resume run trained epoch 1 again")
endif()
message(STATUS "example_resume: both models resumed at epoch 2")
