// Shared by the fuzz targets: scratch files for readers that only take a path, and the
// oracle that tells an expected refusal from a finding.
//
// A reader given arbitrary bytes may do two things: return a value (which the target then
// checks for consistency) or throw std::invalid_argument / std::runtime_error (advaug's
// io_error and numeric_error derive from it) whose message starts with the function that
// refused the input. Anything else - another exception type, an empty or anonymous message,
// a crash, a sanitizer report, a leak, a hang, an absurd allocation - is a finding: the
// target aborts, and libFuzzer saves the input.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeinfo>

namespace advaug_fuzz {

[[noreturn]] inline void finding(const std::string& what) {
    std::fprintf(stderr, "\n==advaug-fuzz== FINDING: %s\n", what.c_str());
    std::fflush(stderr);
    std::abort();
}

/// A directory private to this process, in /dev/shm when it exists (no disk writes per
/// input), removed at exit.
class scratch_dir {
public:
    explicit scratch_dir(const std::string& name) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::path base =
            fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
        path_ = base / ("advaug_fuzz_" + name + "_" + std::to_string(::getpid()));
        fs::remove_all(path_, ec);
        fs::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const void* data, std::size_t size) {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) finding("cannot write the scratch file " + path);
    if (size != 0 && std::fwrite(data, 1, size, f) != size) finding("cannot write " + path);
    if (std::fclose(f) != 0) finding("cannot close " + path);
}

/// Runs `f`; returns true if it returned, false if it threw an expected exception whose
/// message starts with one of `prefixes` (e.g. "read_idx("); aborts on anything else.
template <class F>
bool refused_cleanly(F&& f, std::initializer_list<std::string_view> prefixes) {
    auto check = [&](const char* kind, const std::exception& e) {
        const std::string_view message = e.what();
        for (std::string_view p : prefixes) {
            if (message.substr(0, p.size()) == p) return;
        }
        finding(std::string(kind) + " whose message does not name the function: '" +
                std::string(message) + "'");
    };
    try {
        f();
        return true;
    } catch (const std::invalid_argument& e) {
        check("std::invalid_argument", e);
    } catch (const std::runtime_error& e) {
        check("std::runtime_error", e);
    } catch (const std::exception& e) {
        finding(std::string("unexpected exception ") + typeid(e).name() + ": " + e.what());
    } catch (...) {
        finding("an exception that is not a std::exception");
    }
    return false;
}

/// Runs `f`, which must not throw at all (a step that cannot fail on valid data).
template <class F>
void must_succeed(const char* step, F&& f) {
    try {
        f();
    } catch (const std::exception& e) {
        finding(std::string(step) + " threw " + typeid(e).name() + ": " + e.what());
    }
}

inline void require(bool ok, const std::string& what) {
    if (!ok) finding(what);
}

}  // namespace advaug_fuzz
