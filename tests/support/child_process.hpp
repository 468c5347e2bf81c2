// Forked children for the tests that kill, crash or drop privileges: run a function in a
// child and collect its text, tell the parent when the child reached a point (so a kill is
// timed by an event, never by the clock alone), and drop root so permissions apply.
#pragma once

#include <doctest/doctest.h>

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <string>
#include <utility>

namespace advaug::testing {

/// Runs `f` in a forked child and returns its exit status and the text it returned.
template <class F>
std::pair<int, std::string> in_child(F&& f) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(fds[0]);
        int code = 0;
        std::string text;
        try {
            text = f();
        } catch (const std::exception& e) {
            text = std::string("unexpected exception: ") + e.what();
            code = 3;
        }
        for (std::size_t done = 0; done < text.size();) {
            const ssize_t n = ::write(fds[1], text.data() + done, text.size() - done);
            if (n <= 0) break;
            done += static_cast<std::size_t>(n);
        }
        ::_exit(code);  // no destructors, no doctest report, no leak check in the child
    }
    ::close(fds[1]);
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {status, text};
}

/// A one-shot signal from a forked child to its parent. Create it before fork(); the child
/// calls notify() when it reaches the point, the parent wait()s for it.
class child_signal {
public:
    child_signal() { REQUIRE(::pipe(fds_) == 0); }
    ~child_signal() {
        for (int& fd : fds_)
            if (fd >= 0) ::close(fd);
    }
    child_signal(const child_signal&) = delete;
    child_signal& operator=(const child_signal&) = delete;

    /// In the child.
    void notify() {
        if (fds_[1] >= 0) (void)!::write(fds_[1], "r", 1);
    }
    /// In the parent: true once the child notified, false when it exited without notifying.
    bool wait() {
        if (fds_[1] >= 0) ::close(fds_[1]), fds_[1] = -1;
        char c;
        ssize_t n;
        do n = ::read(fds_[0], &c, 1);
        while (n < 0 && errno == EINTR);
        return n == 1;
    }

private:
    int fds_[2] = {-1, -1};
};

/// In a child process: become `nobody` when running as root, so that file permissions apply.
/// False when root could not be dropped.
inline bool drop_root() {
    if (::geteuid() != 0) return true;
    return ::setgroups(0, nullptr) == 0 && ::setgid(65534) == 0 && ::setuid(65534) == 0;
}

}  // namespace advaug::testing
