# Passes when SOURCE fails to compile with exactly one readable error.
#
#   cmake -DCOMPILER=<c++> -DSOURCE=<file.cpp> [-DINCLUDE_DIRS=a|b] [-DDEFINITIONS=X|Y=1]
#         [-DIMPLICIT_INCLUDE_DIRS=c|d] [-DEXTRA_FLAGS=f|g] [-DPCH_DIR=dir]
#         -P expect_compile_error.cmake
#
# SOURCE must contain at least one line `// expect-error: <regex>`; every such regex (CMake
# regex syntax) must match the compiler output, which is produced under LC_ALL=C. Lists use
# '|' so they survive add_test.
#
# With -DPRECOMPILE=<header> -DPCH_OUT=<dir>/<name>.gch instead of SOURCE, it compiles the
# header into a GCC precompiled header with the same flags, and passes when that succeeds.
# -DPCH_DIR=<dir> (searched first) then lets a source whose first #include is that header read
# it precompiled: GCC uses a .gch it finds on the search path when it was made with the same
# options and silently reads the header itself otherwise, so the verdict does not depend on it.

cmake_minimum_required(VERSION 3.21)

set(required COMPILER SOURCE)
if(DEFINED PRECOMPILE)
    set(required COMPILER PRECOMPILE PCH_OUT)
endif()
foreach(var ${required})
    if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
        message(FATAL_ERROR "expect_compile_error: -D${var}=... is required")
    endif()
endforeach()

# --- the expectations, read without CMake lists: a regex may hold '[' or ';' ---------------

if(NOT DEFINED PRECOMPILE)
file(READ "${SOURCE}" text)
set(marker "expect-error:")
set(expectations 0)
string(FIND "${text}" "${marker}" at)
while(at GREATER_EQUAL 0)
    string(LENGTH "${marker}" marker_length)
    math(EXPR start "${at} + ${marker_length}")
    string(SUBSTRING "${text}" ${start} -1 text)
    string(FIND "${text}" "\n" eol)
    string(SUBSTRING "${text}" 0 ${eol} regex)
    string(STRIP "${regex}" regex)
    if(regex STREQUAL "")
        message(FATAL_ERROR "expect_compile_error: empty `// expect-error:` in ${SOURCE}")
    endif()
    math(EXPR expectations "${expectations} + 1")
    set(expectation_${expectations} "${regex}")
    string(FIND "${text}" "${marker}" at)
endwhile()
if(expectations EQUAL 0)
    message(FATAL_ERROR "expect_compile_error: ${SOURCE} has no `// expect-error: <regex>` line")
endif()
endif()

# --- the compile ----------------------------------------------------------------------------

string(REPLACE "|" ";" implicit "${IMPLICIT_INCLUDE_DIRS}")
string(REPLACE "|" ";" include_dirs "${INCLUDE_DIRS}")
set(flags)
foreach(dir IN LISTS include_dirs)
    # -I/usr/include (a compiler's own directory) breaks libstdc++'s #include_next.
    if(dir AND NOT dir IN_LIST implicit)
        list(APPEND flags "-I${dir}")
    endif()
endforeach()
string(REPLACE "|" ";" definitions "${DEFINITIONS}")
foreach(def IN LISTS definitions)
    if(def)
        list(APPEND flags "-D${def}")
    endif()
endforeach()
string(REPLACE "|" ";" extra "${EXTRA_FLAGS}")
list(APPEND flags ${extra})

if(DEFINED PRECOMPILE)
    get_filename_component(pch_dir "${PCH_OUT}" DIRECTORY)
    file(MAKE_DIRECTORY "${pch_dir}")
    # Written under another name and renamed: a test never sees half a file.
    execute_process(
        COMMAND "${CMAKE_COMMAND}" -E env LC_ALL=C
                "${COMPILER}" -std=c++20 -fdiagnostics-color=never ${flags} -x c++-header
                "${PRECOMPILE}" -o "${PCH_OUT}.part"
        RESULT_VARIABLE result
        OUTPUT_VARIABLE output
        ERROR_VARIABLE output)
    if(NOT result EQUAL 0)
        message(FATAL_ERROR "expect_compile_error: precompiling ${PRECOMPILE} failed:\n${output}")
    endif()
    file(RENAME "${PCH_OUT}.part" "${PCH_OUT}")
    message(STATUS "OK: ${PRECOMPILE} precompiled into ${PCH_OUT}")
    return()
endif()
if(PCH_DIR AND IS_DIRECTORY "${PCH_DIR}")
    list(PREPEND flags "-I${PCH_DIR}")
endif()

# LC_ALL=C: ASCII quotes ('x', not ‘x’) whatever the caller's locale, so regexes are stable.
execute_process(
    COMMAND "${CMAKE_COMMAND}" -E env LC_ALL=C
            "${COMPILER}" -std=c++20 -fsyntax-only -fdiagnostics-color=never ${flags} "${SOURCE}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE output
    ERROR_VARIABLE output)

# --- the verdict ----------------------------------------------------------------------------

set(problems "")
if(result EQUAL 0)
    string(APPEND problems "  - the file compiled, but it must not\n")
endif()

foreach(i RANGE 1 ${expectations})
    if(NOT output MATCHES "${expectation_${i}}")
        string(APPEND problems "  - output does not match expect-error regex: ${expectation_${i}}\n")
    endif()
endforeach()

# Count "error:" lines. Brackets and ';' are masked first so the output splits cleanly into
# lines; the source lines that gcc/clang echo under a diagnostic ("  12 | code") are skipped.
string(REPLACE ";" "<semicolon>" masked "${output}")
string(REPLACE "[" "<lbracket>" masked "${masked}")
string(REPLACE "]" "<rbracket>" masked "${masked}")
string(REPLACE "\n" ";" lines "${masked}")
set(error_lines 0)
foreach(line IN LISTS lines)
    if(line MATCHES "error:" AND NOT line MATCHES "^[ 0-9]*\\|")
        math(EXPR error_lines "${error_lines} + 1")
    endif()
endforeach()
if(NOT error_lines EQUAL 1)
    string(APPEND problems "  - expected exactly one line with \"error:\", found ${error_lines}\n")
endif()

string(REPLACE ";" " " shown_flags "${flags}")
if(problems)
    message("Command: ${COMPILER} -std=c++20 -fsyntax-only ${shown_flags} ${SOURCE}")
    message("Exit code: ${result}")
    message("---- compiler output ----\n${output}---- end of compiler output ----")
    message(FATAL_ERROR "compile-fail test ${SOURCE} failed:\n${problems}")
endif()
message(STATUS "OK: ${SOURCE} fails to compile with one error matching its expectations")
