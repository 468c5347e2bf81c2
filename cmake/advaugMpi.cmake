# Optional data-parallel training over MPI (include/advaug/distributed/, docs/distributed.md).
#
# ADVAUG_ENABLE_MPI = AUTO (default when top level): use MPI when find_package(MPI) finds a
#                     C++ binding; ON: require it; OFF: never look.
# With MPI, this defines the INTERFACE target advaug::mpi (advaug::advaug plus MPI::MPI_CXX)
# and builds tests/distributed (run under mpirun) and examples/distributed_fashion_mnist.cpp.
# advaug::mpi is not installed: a user links advaug::advaug and MPI::MPI_CXX.
# Without it, one status line says so and nothing else changes. Sets ADVAUG_MPI_ENABLED.

if(PROJECT_IS_TOP_LEVEL)
    set(_advaug_mpi_default AUTO)
else()
    set(_advaug_mpi_default OFF)
endif()
set(ADVAUG_ENABLE_MPI ${_advaug_mpi_default} CACHE STRING
    "Build data-parallel training over MPI (advaug::mpi, its tests and example): AUTO, ON or OFF")
set_property(CACHE ADVAUG_ENABLE_MPI PROPERTY STRINGS AUTO ON OFF)
string(TOUPPER "${ADVAUG_ENABLE_MPI}" _advaug_mpi_mode)
if(NOT _advaug_mpi_mode MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "ADVAUG_ENABLE_MPI must be AUTO, ON or OFF, got '${ADVAUG_ENABLE_MPI}'")
endif()

set(ADVAUG_MPI_ENABLED FALSE)
if(_advaug_mpi_mode STREQUAL "OFF")
    set(_advaug_mpi_why "ADVAUG_ENABLE_MPI=OFF")
elseif(NOT ADVAUG_HAS_IO)
    set(_advaug_mpi_why "advaug::advaug is not available (zlib or libzip missing)")
else()
    if(_advaug_mpi_mode STREQUAL "ON")
        find_package(MPI REQUIRED COMPONENTS CXX)
    else()
        find_package(MPI QUIET COMPONENTS CXX)
    endif()
    if(MPI_CXX_FOUND)
        set(ADVAUG_MPI_ENABLED TRUE)
    else()
        set(_advaug_mpi_why "no MPI C++ library found (Debian: apt-get install libopenmpi-dev openmpi-bin)")
    endif()
endif()

if(NOT ADVAUG_MPI_ENABLED)
    message(STATUS "advaug: MPI data parallelism off: ${_advaug_mpi_why}")
    return()
endif()

advaug_interface_target(advaug_mpi mpi)
target_link_libraries(advaug_mpi INTERFACE advaug MPI::MPI_CXX)
message(STATUS "advaug: MPI data parallelism on (MPI ${MPI_CXX_VERSION})")

# How tests launch R processes on one machine: --oversubscribe lets 3 ranks share 2 cores,
# and root (as in CI containers) needs OpenMPI's explicit consent.
set(ADVAUG_MPIEXEC_FLAGS --oversubscribe)
set(ADVAUG_MPIEXEC_ENV OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1
    OMPI_MCA_mpi_yield_when_idle=1)

if(ADVAUG_BUILD_TESTS)
    add_subdirectory(tests/distributed)
endif()
if(ADVAUG_BUILD_EXAMPLES)
    add_executable(distributed_fashion_mnist examples/distributed_fashion_mnist.cpp)
    target_link_libraries(distributed_fashion_mnist PRIVATE advaug::mpi)
endif()

# The example's smoke run on 2 ranks, so that it keeps working (about 2 s).
if(ADVAUG_BUILD_TESTS AND ADVAUG_BUILD_EXAMPLES AND MPIEXEC_EXECUTABLE)
    add_test(NAME example_distributed_fashion_mnist_smoke
        COMMAND "${MPIEXEC_EXECUTABLE}" ${ADVAUG_MPIEXEC_FLAGS} ${MPIEXEC_NUMPROC_FLAG} 2
                $<TARGET_FILE:distributed_fashion_mnist> --train-samples 1000 --test-samples 500
        WORKING_DIRECTORY "${PROJECT_BINARY_DIR}")
    set_tests_properties(example_distributed_fashion_mnist_smoke PROPERTIES
        ENVIRONMENT "${ADVAUG_MPIEXEC_ENV}" RUN_SERIAL TRUE TIMEOUT 300 LABELS "example;distributed")
endif()
