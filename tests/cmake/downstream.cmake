# Builds and runs tests/downstream/main.cpp the way a user of advaug would.
#
#   cmake -DMODE=<find_package|add_subdirectory|copied_headers|no_blas>
#         -DADVAUG_SOURCE_DIR=<repo> -DCONSUMER_DIR=<repo>/tests/downstream
#         -DWORK_DIR=<scratch dir, wiped first> -DCXX_COMPILER=<c++>
#         [-DCXX_COMPILER_LAUNCHER=ccache] [-DGENERATOR=<cmake generator>]
#         -P downstream.cmake
#
# find_package      build and install advaug (with advaug-eval) into WORK_DIR/prefix, run the
#                   installed advaug-eval --help, then the consumer finds advaug there
# add_subdirectory  consumer pulls the advaug source tree in with add_subdirectory
# copied_headers    no CMake at all: copy include/advaug, compile with c++ -I, -lopenblas -lz -lzip
# no_blas           as copied_headers with -DADVAUG_NO_BLAS, linking no BLAS at all
#
# Every mode also builds and runs main_core.cpp, which uses only the headers of advaug::core:
# through the advaug::core target in the CMake modes, linked without -lz -lzip otherwise.

cmake_minimum_required(VERSION 3.21)

foreach(var MODE ADVAUG_SOURCE_DIR CONSUMER_DIR WORK_DIR CXX_COMPILER)
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "downstream: -D${var}=... is required")
    endif()
endforeach()

set(jobs 2)

function(step what)
    message(STATUS "downstream ${MODE}: ${what}")
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
    if(NOT result EQUAL 0)
        string(REPLACE ";" " " shown "${ARGN}")
        message(FATAL_ERROR "downstream ${MODE}: ${what} failed (${result}):\n  ${shown}")
    endif()
endfunction()

# Options every nested configure gets, so it uses the same toolchain as the outer build.
set(common_args "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}" -DCMAKE_BUILD_TYPE=Release)
if(CXX_COMPILER_LAUNCHER)
    list(APPEND common_args "-DCMAKE_CXX_COMPILER_LAUNCHER=${CXX_COMPILER_LAUNCHER}")
endif()
if(GENERATOR)
    list(APPEND common_args -G "${GENERATOR}")
endif()

# Reruns must not see a previous run's install or cache.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

set(consumer_build "${WORK_DIR}/consumer-build")

if(MODE STREQUAL "find_package")
    set(prefix "${WORK_DIR}/prefix")
    step("configure advaug"
        "${CMAKE_COMMAND}" -S "${ADVAUG_SOURCE_DIR}" -B "${WORK_DIR}/advaug-build"
        ${common_args}
        "-DCMAKE_INSTALL_PREFIX=${prefix}"
        -DADVAUG_BUILD_TESTS=OFF -DADVAUG_BUILD_EXAMPLES=OFF -DADVAUG_BUILD_BENCHMARKS=OFF
        -DADVAUG_BUILD_TOOLS=ON)
    step("build advaug" "${CMAKE_COMMAND}" --build "${WORK_DIR}/advaug-build" -j ${jobs})
    step("install advaug" "${CMAKE_COMMAND}" --install "${WORK_DIR}/advaug-build")
    # The tool lands in bin/ and runs from there (docs/advaug_eval.md).
    set(tool "${prefix}/bin/advaug-eval${CMAKE_EXECUTABLE_SUFFIX}")
    if(NOT EXISTS "${tool}")
        message(FATAL_ERROR "downstream find_package: cmake --install did not install ${tool}")
    endif()
    execute_process(COMMAND "${tool}" --help
        RESULT_VARIABLE result OUTPUT_VARIABLE help ERROR_VARIABLE help)
    if(NOT result EQUAL 0 OR NOT help MATCHES "--model")
        message(FATAL_ERROR "downstream find_package: the installed advaug-eval --help failed "
                            "(${result}):\n${help}")
    endif()
    step("configure consumer"
        "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${consumer_build}" ${common_args}
        -DADVAUG_DOWNSTREAM_MODE=find_package
        "-DCMAKE_PREFIX_PATH=${prefix}"
        -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF)
    # Make sure it was our fresh install that got found, not some advaug on the system.
    file(STRINGS "${consumer_build}/CMakeCache.txt" found_dir REGEX "^advaug_DIR:")
    string(REGEX REPLACE "^advaug_DIR:[A-Z]+=" "" found_dir "${found_dir}")
    file(REAL_PATH "${prefix}" real_prefix)
    file(REAL_PATH "${found_dir}" real_found)
    string(FIND "${real_found}/" "${real_prefix}/" at)
    if(NOT at EQUAL 0)
        message(FATAL_ERROR "downstream find_package: found advaug in '${found_dir}', "
                            "not under the test prefix '${prefix}'")
    endif()
    step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}" -j ${jobs})
    set(program "${consumer_build}/downstream")
    set(core_program "${consumer_build}/downstream_core")

elseif(MODE STREQUAL "add_subdirectory")
    step("configure consumer"
        "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}" -B "${consumer_build}" ${common_args}
        -DADVAUG_DOWNSTREAM_MODE=add_subdirectory
        "-DADVAUG_SOURCE_DIR=${ADVAUG_SOURCE_DIR}")
    step("build consumer" "${CMAKE_COMMAND}" --build "${consumer_build}" -j ${jobs})
    set(program "${consumer_build}/downstream")
    set(core_program "${consumer_build}/downstream_core")

elseif(MODE STREQUAL "copied_headers" OR MODE STREQUAL "no_blas")
    # Only advaug's own headers are copied; xtensor & co. come from the system as usual.
    file(COPY "${ADVAUG_SOURCE_DIR}/include/advaug" DESTINATION "${WORK_DIR}/include")
    set(program "${WORK_DIR}/downstream")
    if(MODE STREQUAL "copied_headers")
        set(defines)
        set(blas -lopenblas)
    else()
        # Linking without any BLAS proves the no-BLAS build references none of it.
        set(defines -DADVAUG_NO_BLAS)
        set(blas)
    endif()
    step("compile main.cpp"
        "${CXX_COMPILER}" -std=c++20 -O1 ${defines} "-I${WORK_DIR}/include"
        "${CONSUMER_DIR}/main.cpp" -o "${program}" ${blas} -lz -lzip)
    # Linking the core's headers without -lz -lzip proves they reference neither.
    set(core_program "${WORK_DIR}/downstream_core")
    step("compile main_core.cpp"
        "${CXX_COMPILER}" -std=c++20 -O1 ${defines} "-I${WORK_DIR}/include"
        "${CONSUMER_DIR}/main_core.cpp" -o "${core_program}" ${blas})

else()
    message(FATAL_ERROR "downstream: unknown MODE '${MODE}'")
endif()

foreach(run IN ITEMS "${program}|downstream ok" "${core_program}|downstream core ok")
    string(REPLACE "|" ";" run "${run}")
    list(GET run 0 exe)
    list(GET run 1 expected)
    message(STATUS "downstream ${MODE}: run ${exe}")
    execute_process(COMMAND "${exe}"
        RESULT_VARIABLE result OUTPUT_VARIABLE output ERROR_VARIABLE output)
    message("${output}")
    if(NOT result EQUAL 0 OR NOT output MATCHES "${expected}")
        message(FATAL_ERROR "downstream ${MODE}: ${exe} failed (${result})")
    endif()
endforeach()
