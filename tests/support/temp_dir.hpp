// A fresh directory under the system's temp directory, removed (with its content) when the
// object goes out of scope, also when a check fails.
#pragma once

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

namespace advaug::testing {

struct temp_dir {
    std::filesystem::path path;

    temp_dir() {
        static std::atomic<int> counter = 0;
        path = std::filesystem::temp_directory_path() /
               ("advaug_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    /// The path of `name` inside the directory.
    std::string file(const std::string& name) const { return (path / name).string(); }
};

}  // namespace advaug::testing
