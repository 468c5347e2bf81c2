# Passes when every code snippet in the documentation is still a verbatim cut of its source.
#
#   cmake [-DSOURCE_DIR=<repo>] [-DDOCS=README.md|docs/design.md] -P readme_snippets.cmake
#
# A snippet is a ```cpp block whose fence is preceded by a line
#   <!-- snippet: examples/custom_model.cpp -->
# (blank lines may sit between the two). Its lines must appear as contiguous lines of the
# named file (relative to SOURCE_DIR); leading and trailing whitespace of each line is
# ignored, so a snippet may be dedented. Blocks without the marker are not checked.
#
# DOCS defaults to README.md and every docs/*.md. The pages that teach a new user the API
# (REQUIRED below: the README's quick start, a model of your own, training from your own data
# and resuming, saving a model) must each hold at least one snippet, otherwise this test
# would pass without checking what matters most.

cmake_minimum_required(VERSION 3.21)

if(NOT DEFINED SOURCE_DIR OR SOURCE_DIR STREQUAL "")
    get_filename_component(SOURCE_DIR "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
else()
    # A relative SOURCE_DIR (-DSOURCE_DIR=.) made the docs/*.md glob below find nothing, so
    # only the README was checked.
    get_filename_component(SOURCE_DIR "${SOURCE_DIR}" ABSOLUTE)
endif()
if(DEFINED DOCS AND NOT DOCS STREQUAL "")
    string(REPLACE "|" ";" docs "${DOCS}")
else()
    file(GLOB docs RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/docs/*.md")
    list(SORT docs)
    list(PREPEND docs README.md)
endif()

# Reads a file as a list of lines, each stripped of surrounding whitespace. ';', '[' and ']'
# are masked first, or CMake's list handling would split or merge lines at them; masked
# lines compare equal exactly when the originals do.
function(read_lines path out)
    file(READ "${path}" text)
    string(REPLACE "\r" "" text "${text}")
    string(REGEX REPLACE "[ \t]+\n" "\n" text "${text}")
    string(REGEX REPLACE "\n[ \t]+" "\n" text "${text}")
    string(REGEX REPLACE "^[ \t]+" "" text "${text}")
    string(REPLACE ";" "<semicolon>" text "${text}")
    string(REPLACE "[" "<lbracket>" text "${text}")
    string(REPLACE "]" "<rbracket>" text "${text}")
    string(REPLACE "\n" ";" lines "${text}")
    set(${out} "${lines}" PARENT_SCOPE)
endfunction()

function(unmask text out)
    string(REPLACE "<semicolon>" ";" text "${text}")
    string(REPLACE "<lbracket>" "[" text "${text}")
    string(REPLACE "<rbracket>" "]" text "${text}")
    set(${out} "${text}" PARENT_SCOPE)
endfunction()

# Sets `out` to -1 if `snippet` (a list of lines) occurs contiguously in `source`, otherwise
# to the index in `snippet` of the first line not found: the line after the longest prefix
# of the snippet that occurs anywhere in the source. `where` gets the 1-based source line at
# which that longest prefix starts (0 if not even the first line occurs).
function(find_snippet snippet source out where)
    list(LENGTH snippet n)
    list(LENGTH source m)
    list(GET snippet 0 first)
    set(best 0)
    set(best_at 0)
    set(start 0)
    while(start LESS m)
        list(GET source ${start} line)
        if(line STREQUAL first)
            set(k 1)
            while(k LESS n)
                math(EXPR s "${start} + ${k}")
                if(s GREATER_EQUAL m)
                    break()
                endif()
                list(GET source ${s} a)
                list(GET snippet ${k} b)
                if(NOT a STREQUAL b)
                    break()
                endif()
                math(EXPR k "${k} + 1")
            endwhile()
            if(k EQUAL n)
                set(${out} -1 PARENT_SCOPE)
                return()
            endif()
            if(k GREATER best)
                set(best ${k})
                math(EXPR best_at "${start} + 1")
            endif()
        endif()
        math(EXPR start "${start} + 1")
    endwhile()
    set(${out} ${best} PARENT_SCOPE)
    set(${where} ${best_at} PARENT_SCOPE)
endfunction()

set(required README.md docs/model_contract.md docs/training.md docs/model_files.md)

set(problems "")
set(checked 0)
set(checked_docs "")

foreach(doc IN LISTS docs)
    if(NOT EXISTS "${SOURCE_DIR}/${doc}")
        string(APPEND problems "  - ${doc}: file not found\n")
        continue()
    endif()
    read_lines("${SOURCE_DIR}/${doc}" lines)
    list(LENGTH lines count)

    set(i 0)
    while(i LESS count)
        list(GET lines ${i} line)
        math(EXPR i "${i} + 1")
        if(NOT line MATCHES "^<!-- snippet: (.+) -->$")
            continue()
        endif()
        string(STRIP "${CMAKE_MATCH_1}" target)
        set(marker_line ${i})
        set(block "${doc}:${marker_line} (snippet of ${target})")

        # The fence must follow the marker, with nothing but blank lines in between.
        set(fence "")
        while(i LESS count)
            list(GET lines ${i} fence)
            math(EXPR i "${i} + 1")
            if(NOT fence STREQUAL "")
                break()
            endif()
        endwhile()
        if(NOT fence STREQUAL "```cpp")
            string(APPEND problems "  - ${block}: the marker is not followed by a ```cpp block\n")
            continue()
        endif()

        # The block's lines and their line numbers in the document; blank lines at either
        # end are layout, not content.
        set(snippet "")
        set(numbers "")
        set(closed FALSE)
        while(i LESS count)
            list(GET lines ${i} line)
            math(EXPR i "${i} + 1")
            if(line STREQUAL "```")
                set(closed TRUE)
                break()
            endif()
            if(numbers OR NOT line STREQUAL "")
                list(APPEND snippet "${line}")
                list(APPEND numbers ${i})
            endif()
        endwhile()
        if(NOT closed)
            string(APPEND problems "  - ${block}: the ```cpp block is never closed\n")
            break()
        endif()
        if(NOT numbers)
            string(APPEND problems "  - ${block}: the block is empty\n")
            continue()
        endif()
        list(GET snippet -1 l)
        while(l STREQUAL "")
            list(REMOVE_AT snippet -1)
            list(REMOVE_AT numbers -1)
            list(GET snippet -1 l)
        endwhile()

        if(NOT EXISTS "${SOURCE_DIR}/${target}" OR IS_DIRECTORY "${SOURCE_DIR}/${target}")
            string(APPEND problems "  - ${block}: ${target} does not exist\n")
            continue()
        endif()
        read_lines("${SOURCE_DIR}/${target}" source)
        find_snippet("${snippet}" "${source}" missing prefix_at)
        math(EXPR checked "${checked} + 1")
        list(APPEND checked_docs "${doc}")
        if(NOT missing EQUAL -1)
            list(GET snippet ${missing} bad)
            unmask("${bad}" bad)
            list(GET numbers ${missing} bad_line)
            string(APPEND problems
                "  - ${block}: line ${bad_line} of ${doc} is not in ${target}"
                " (in sequence with the lines before it):\n      ${bad}\n")
            if(missing GREATER 0)
                string(APPEND problems
                    "    the ${missing} line(s) before it match ${target} from line ${prefix_at}\n")
            endif()
        endif()
    endwhile()
endforeach()

foreach(doc IN LISTS required)
    if(doc IN_LIST docs AND NOT doc IN_LIST checked_docs)
        string(APPEND problems "  - ${doc} has no `<!-- snippet: FILE -->` block: nothing was checked\n")
    endif()
endforeach()

if(problems)
    message(FATAL_ERROR "documentation snippets have drifted from their sources:\n${problems}"
        "Cut the snippet again from the named file (or fix the file name in the marker).")
endif()
message(STATUS "OK: ${checked} snippet(s) match their sources")
