# The optional CUDA backend (include/advaug/cuda/, docs/cuda.md).
#
# ADVAUG_ENABLE_CUDA = AUTO (default): use CUDA when a toolkit with cuBLAS is found;
#                      ON: require it; OFF: never look.
# With CUDA, this defines the INTERFACE target advaug::cuda (advaug::advaug plus the CUDA
# runtime and cuBLAS; cuRAND's device API is header-only) and builds tests/cuda and examples/cuda_fashion_mnist.cu for
# CMAKE_CUDA_ARCHITECTURES (default 80 and 90: A100 and H100/H200). Without it, one status
# line says so and nothing else changes. Sets ADVAUG_CUDA_ENABLED for the caller.

# A parent project that pulls advaug in gets no CUDA probing unless it asks for it.
if(PROJECT_IS_TOP_LEVEL)
    set(_advaug_cuda_default AUTO)
else()
    set(_advaug_cuda_default OFF)
endif()
set(ADVAUG_ENABLE_CUDA ${_advaug_cuda_default} CACHE STRING
    "Build the CUDA backend's tests and example: AUTO, ON or OFF")
set_property(CACHE ADVAUG_ENABLE_CUDA PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${ADVAUG_ENABLE_CUDA}" _advaug_cuda_mode)
if(NOT _advaug_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "ADVAUG_ENABLE_CUDA must be AUTO, ON or OFF, got '${ADVAUG_ENABLE_CUDA}'")
endif()

set(ADVAUG_CUDA_ENABLED FALSE)
set(_advaug_cuda_why "ADVAUG_ENABLE_CUDA=OFF")
if(NOT _advaug_cuda_mode STREQUAL "OFF")
    # nvcc is often not on PATH; its conventional location is.
    if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX}
       AND EXISTS "/usr/local/cuda/bin/nvcc")
        set(CMAKE_CUDA_COMPILER "/usr/local/cuda/bin/nvcc" CACHE FILEPATH "CUDA compiler")
    endif()
    include(CheckLanguage)
    # check_language() reports its search in two lines of its own; ours below is the one.
    set(_advaug_log_level "${CMAKE_MESSAGE_LOG_LEVEL}")
    set(CMAKE_MESSAGE_LOG_LEVEL NOTICE)
    check_language(CUDA)
    set(CMAKE_MESSAGE_LOG_LEVEL "${_advaug_log_level}")
    set(_advaug_cuda_why "no CUDA compiler found")
    if(CMAKE_CUDA_COMPILER)
        if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
            set(CMAKE_CUDA_ARCHITECTURES 80 90)
        endif()
        # nvcc compiles the host code with the project's C++ compiler (xtensor, C++20).
        if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
            set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}")
        endif()
        if(ADVAUG_CCACHE AND NOT DEFINED CMAKE_CUDA_COMPILER_LAUNCHER)
            set(CMAKE_CUDA_COMPILER_LAUNCHER "${ADVAUG_CCACHE}")
        endif()
        enable_language(CUDA)
        find_package(CUDAToolkit)
        set(_advaug_cuda_why "the CUDA toolkit lacks cuBLAS")
        if(CUDAToolkit_FOUND AND TARGET CUDA::cublas)
            set(ADVAUG_CUDA_ENABLED TRUE)
        endif()
        # advaug::cuda builds on advaug::advaug, which needs zlib and libzip.
        if(NOT ADVAUG_HAS_IO)
            set(ADVAUG_CUDA_ENABLED FALSE)
            set(_advaug_cuda_why "zlib or libzip was not found (advaug::cuda needs advaug::advaug)")
        endif()
    endif()
    if(NOT ADVAUG_CUDA_ENABLED AND _advaug_cuda_mode STREQUAL "ON")
        message(FATAL_ERROR "ADVAUG_ENABLE_CUDA=ON, but ${_advaug_cuda_why}")
    endif()
endif()

if(ADVAUG_CUDA_ENABLED)
    add_library(advaug_cuda INTERFACE)
    add_library(advaug::cuda ALIAS advaug_cuda)
    target_link_libraries(advaug_cuda INTERFACE advaug CUDA::cudart CUDA::cublas)
    # CMake 3.25 does not know nvcc 13's standards (cuda_std_20 fails), so the flag is given
    # directly; advaug's headers need C++20 in host and device code alike.
    target_compile_options(advaug_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:-std=c++20>)
    message(STATUS "advaug: CUDA backend on (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                   "architectures ${CMAKE_CUDA_ARCHITECTURES}): building tests/cuda and the example")
    if(ADVAUG_BUILD_TESTS)
        add_subdirectory("${PROJECT_SOURCE_DIR}/tests/cuda" "${PROJECT_BINARY_DIR}/tests/cuda")
    endif()
    if(ADVAUG_BUILD_EXAMPLES)
        add_executable(cuda_fashion_mnist "${PROJECT_SOURCE_DIR}/examples/cuda_fashion_mnist.cu")
        target_link_libraries(cuda_fashion_mnist PRIVATE advaug::cuda)
    endif()
else()
    message(STATUS "advaug: CUDA backend skipped (${_advaug_cuda_why}); tests/cuda and the CUDA example are not built")
endif()
