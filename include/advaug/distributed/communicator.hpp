// A communicator: the MPI processes of one job, as an RAII object whose failures are advaug
// exceptions. Only this header and distributed/ include <mpi.h>; the umbrella advaug.hpp never
// includes distributed/, so the library builds and runs without MPI (docs/distributed.md).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>

#include "advaug/detail/error.hpp"

namespace advaug::distributed {

/// A collective or setup call that failed: the message names the operation, the rank and
/// MPI's own description.
class mpi_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// MPI_Init_thread / MPI_Finalize. Make one, in main(), before any communicator; MPI is used
/// from the thread that made it only (MPI_THREAD_FUNNELED: advaug's worker threads never call
/// MPI).
class environment {
public:
    environment(int& argc, char**& argv) {
        int provided = 0;
        check("MPI_Init_thread", MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
        if (provided < MPI_THREAD_FUNNELED) {
            throw mpi_error(
                "distributed::environment(): the MPI library does not provide MPI_THREAD_FUNNELED");
        }
    }
    environment(const environment&) = delete;
    environment& operator=(const environment&) = delete;
    ~environment() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized) MPI_Finalize();
    }

private:
    static void check(const char* op, int code) {
        if (code != MPI_SUCCESS)
            throw mpi_error(advaug::detail::concat("distributed::environment(): ", op, " failed"));
    }
};

/// A duplicate of MPI_COMM_WORLD (or of `parent`), freed on destruction. Its error handler
/// returns codes, which every member turns into mpi_error; a process that dies is MPI's
/// runtime's to report (mpirun ends the job and names the rank). A process that hangs without
/// dying is caught by the timeout: every collective is non-blocking, polled until done or until
/// timeout() seconds have passed; then this process prints which collective it waited for, on
/// which rank and for how long, and ends the job (MPI_Abort), since a collective that never
/// completes cannot be cancelled and the others would wait in it too.
/// requires: an environment exists for the whole lifetime of the communicator.
class communicator {
public:
    explicit communicator(MPI_Comm parent = MPI_COMM_WORLD) {
        int r = 0, s = 0;
        check("MPI_Comm_dup", MPI_Comm_dup(parent, &comm_));
        check("MPI_Comm_set_errhandler", MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
        check("MPI_Comm_rank", MPI_Comm_rank(comm_, &r));
        check("MPI_Comm_size", MPI_Comm_size(comm_, &s));
        rank_ = static_cast<std::size_t>(r);
        size_ = static_cast<std::size_t>(s);
    }
    communicator(const communicator&) = delete;
    communicator& operator=(const communicator&) = delete;
    ~communicator() {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (!finalized && comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    }

    /// The longest wait, in seconds, for one collective before the job is ended; 0 waits
    /// forever (and uses MPI's blocking collectives). Default 300. requires: finite, >= 0.
    communicator& timeout(double seconds) {
        if (!std::isfinite(seconds) || seconds < 0) {
            advaug::detail::invalid("distributed::communicator::timeout",
                                    "seconds must be finite and >= 0 (0: no timeout), got ",
                                    seconds);
        }
        timeout_ = seconds;
        return *this;
    }
    double timeout() const { return timeout_; }

    std::size_t rank() const { return rank_; }
    std::size_t size() const { return size_; }
    bool is_root() const { return rank_ == 0; }
    MPI_Comm native() const { return comm_; }

    /// In place, on every process: v = the element-wise sum of all processes' v.
    void all_reduce_sum(std::span<float> v) const { all_reduce(v.data(), v.size(), MPI_FLOAT); }
    void all_reduce_sum(std::span<double> v) const { all_reduce(v.data(), v.size(), MPI_DOUBLE); }
    void all_reduce_sum(std::span<std::uint64_t> v) const {
        all_reduce(v.data(), v.size(), MPI_UINT64_T);
    }

    /// In place: v = the root's v on every process.
    void broadcast(std::span<std::byte> v, std::size_t root = 0) const {
        check_count("MPI_Bcast", v.size());
        const int n = static_cast<int>(v.size()), r = static_cast<int>(root);
        if (timeout_ == 0) {
            check("MPI_Bcast", MPI_Bcast(v.data(), n, MPI_BYTE, r, comm_));
            return;
        }
        MPI_Request request = MPI_REQUEST_NULL;
        check("MPI_Ibcast", MPI_Ibcast(v.data(), n, MPI_BYTE, r, comm_, &request));
        wait("MPI_Ibcast", request);
    }
    void barrier() const {
        if (timeout_ == 0) {
            check("MPI_Barrier", MPI_Barrier(comm_));
            return;
        }
        MPI_Request request = MPI_REQUEST_NULL;
        check("MPI_Ibarrier", MPI_Ibarrier(comm_, &request));
        wait("MPI_Ibarrier", request);
    }

    /// Ends every process of the job with `code` (after an error on one of them, so that the
    /// others do not wait in a collective forever).
    [[noreturn]] void abort(int code) const {
        MPI_Abort(comm_, code);
        std::abort();
    }

private:
    void all_reduce(void* data, std::size_t n, MPI_Datatype type) const {
        check_count("MPI_Allreduce", n);
        // Open MPI reduces in an order fixed by size and count: every rank gets the same bits,
        // and a rerun gets them again (tests/distributed checks both).
        if (timeout_ == 0) {
            check("MPI_Allreduce",
                  MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(n), type, MPI_SUM, comm_));
            return;
        }
        MPI_Request request = MPI_REQUEST_NULL;
        check("MPI_Iallreduce", MPI_Iallreduce(MPI_IN_PLACE, data, static_cast<int>(n), type,
                                               MPI_SUM, comm_, &request));
        wait("MPI_Iallreduce", request);
    }
    /// Polls `request` until it completes, or ends the job when the timeout passes. A
    /// non-blocking collective advances only inside MPI calls, so the first 50 ms poll with a
    /// yield in between (the collective itself); after that the wait is for a slower rank, and
    /// a poll every 0.2 ms leaves the cores to the ranks computing.
    void wait(const char* op, MPI_Request& request) const {
        const auto start = std::chrono::steady_clock::now();
        while (true) {
            int done = 0;
            check(op, MPI_Test(&request, &done, MPI_STATUS_IGNORE));
            if (done) return;
            const double waited =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            if (waited > timeout_) {
                std::cerr << advaug::detail::concat(
                                 "distributed::communicator: ", op, " timed out on rank ", rank_,
                                 " of ", size_, " after ", std::round(waited * 100) / 100,
                                 " s (timeout ", timeout_,
                                 " s): another rank hangs or is far behind; ending the job")
                          << std::endl;
                abort(3);
            }
            if (waited < 0.05) {
                std::this_thread::yield();
            } else {
                std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        }
    }
    void check_count(const char* op, std::size_t n) const {
        if (n > static_cast<std::size_t>(INT32_MAX)) {
            throw mpi_error(advaug::detail::concat("distributed::communicator: ", op, " on rank ",
                                                   rank_, " of ", size_, ": ", n,
                                                   " elements exceed MPI's int count"));
        }
    }
    void check(const char* op, int code) const {
        if (code == MPI_SUCCESS) return;
        char text[MPI_MAX_ERROR_STRING];
        int length = 0;
        MPI_Error_string(code, text, &length);
        throw mpi_error(advaug::detail::concat(
            "distributed::communicator: ", op, " failed on rank ", rank_, " of ", size_, ": ",
            std::string(text, static_cast<std::size_t>(length))));
    }

    MPI_Comm comm_ = MPI_COMM_NULL;
    std::size_t rank_ = 0, size_ = 0;
    double timeout_ = 300;
};

}  // namespace advaug::distributed
