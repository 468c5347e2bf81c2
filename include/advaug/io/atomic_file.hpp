// Whole-file reads and atomic whole-file writes.
//
// write_file_atomically() writes to a temporary file in the target's directory, flushes it
// to disk (fsync), renames it over the target and syncs the directory. A reader therefore
// sees the old file or the new one, never a torn mix, even if the process is killed or the
// disk fills up half-way; on any error the temporary file is removed and the old file stays.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "advaug/detail/error.hpp"

namespace advaug::io {

/// Replaces `path` with `bytes` atomically. throws io_error naming the path and the reason.
inline void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes);

/// The whole content of `path`. throws io_error naming the path and the reason.
inline std::vector<std::uint8_t> read_file(const std::string& path);

// ---------------------------------------------------------------------------------------------

}  // namespace advaug::io

namespace advaug::detail::file {
[[noreturn]] inline void fail(const char* fn, const std::string& path, const char* what, int err) {
    throw io_error(concat(fn, "(): ", what, " '", path, "': ", std::strerror(err)));
}
}  // namespace advaug::detail::file

namespace advaug::io {

inline void write_file_atomically(const std::string& path, std::span<const std::uint8_t> bytes) {
    const char* fn = "write_file_atomically";
    namespace fs = std::filesystem;
    const fs::path target(path);
    const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
    const std::string tmp_prefix = "." + target.filename().string() + ".tmp.";
    // A writer killed between mkstemp and rename leaves its temporary file; remove those of
    // this target (the target itself is intact either way).
    // Best effort: the non-throwing increment, so that an unreadable directory surfaces as
    // mkstemp's io_error below rather than as a std::filesystem_error from here.
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.size() == tmp_prefix.size() + 6 && name.compare(0, tmp_prefix.size(), tmp_prefix) == 0) {
            std::error_code ignored;
            fs::remove(it->path(), ignored);
        }
    }
    std::string tmp_template = (dir / (tmp_prefix + "XXXXXX")).string();
    std::vector<char> name(tmp_template.begin(), tmp_template.end());
    name.push_back('\0');
    const int fd = ::mkstemp(name.data());
    if (fd < 0) detail::file::fail(fn, path, "cannot create a temporary file next to", errno);
    const std::string tmp(name.data());
    auto abandon = [&](const char* what, int err) {
        ::close(fd);
        ::unlink(tmp.c_str());
        detail::file::fail(fn, path, what, err);
    };
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            abandon("cannot write", errno);  // ENOSPC, EDQUOT, EFBIG (RLIMIT_FSIZE), EIO
        }
        if (n == 0) abandon("cannot write", EIO);  // would otherwise loop for ever
        done += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd, 0644) != 0) abandon("cannot set permissions of", errno);
    if (::fsync(fd) != 0) abandon("cannot flush", errno);
    if (::close(fd) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        detail::file::fail(fn, path, "cannot close", err);
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        detail::file::fail(fn, path, "cannot rename the temporary file onto", err);
    }
    // Persist the rename itself. The target already holds the new content, but until the
    // directory is synced a crash may bring the old one back; say so rather than report a
    // durable save. EINVAL: the file system cannot sync directories (nothing to be done).
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd < 0)
        detail::file::fail(fn, path, "wrote, but cannot open the directory to sync", errno);
    if (::fsync(dfd) != 0 && errno != EINVAL) {
        const int err = errno;
        ::close(dfd);
        detail::file::fail(fn, path, "wrote, but cannot sync the directory of", err);
    }
    ::close(dfd);
}

inline std::vector<std::uint8_t> read_file(const std::string& path) {
    const char* fn = "read_file";
    const int fd = ::open(path.c_str(), O_RDONLY);
    if (fd < 0) detail::file::fail(fn, path, "cannot open", errno);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const int err = errno ? errno : EISDIR;
        ::close(fd);
        detail::file::fail(fn, path, "not a readable regular file:", err);
    }
    std::vector<std::uint8_t> out(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < out.size()) {
        const ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            ::close(fd);
            detail::file::fail(fn, path, "cannot read", err);
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return out;
}

}  // namespace advaug::io
