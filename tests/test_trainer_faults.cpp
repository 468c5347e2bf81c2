// Faults during training (issue 8, item 4): a checkpoint location that cannot be written, a
// full disk, a model that diverges between checkpoints, and a writer killed at random points,
// many times. In every case the previous checkpoint must survive byte for byte and still
// load. test_trainer.cpp has the NaN-loss message and the resume-after-kill runs; this file
// covers what they leave out. Faults that would hurt the test process itself (dropped
// privileges, a file size limit, SIGKILL) happen in forked children.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/models.hpp"
#include "support/temp_dir.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_trainer_faults {

using namespace advaug;
using testing::temp_dir;
namespace fs = std::filesystem;

namespace {

// Three classes around random centres in [0.25, 0.75]^10; 64 samples, 4 batches of 16.
dataset<float> blobs() {
    const std::size_t n = 64, features = 10, classes = 3;
    rng gen(6);
    std::vector<float> centres(classes * features), x(n * features);
    for (auto& c : centres) c = static_cast<float>(gen.uniform(0.25, 0.75));
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        y(i) = static_cast<std::int64_t>(i % classes);
        for (std::size_t d = 0; d < features; ++d) {
            x[i * features + d] = std::clamp(
                centres[(i % classes) * features + d] + static_cast<float>(0.08 * gen.normal()), 0.0f, 1.0f);
        }
    }
    return dataset<float>(std::move(x), {features}, std::move(y), classes);
}

train_options options(std::size_t epochs) {
    static std::ostringstream sink;
    return train_options{}.method(training_method::fgsm_rs).epsilon(0.1).learning_rate(lr_schedule::constant(0.1))
        .batch_size(16).epochs(epochs).seed(3).progress(progress_style::none).output(sink);
}

using weights = std::vector<std::vector<float>>;

weights weights_of(mlp<float>& net) {
    weights out;
    for (auto& p : net.parameters()) out.emplace_back(p.value.begin(), p.value.end());
    return out;
}

/// The weights of an uninterrupted run of `epochs` epochs: what every resumed run must reach.
weights uninterrupted(const dataset<float>& data, std::size_t epochs) {
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer tr(net, opt, options(epochs));
    tr.fit(data);
    return weights_of(net);
}

/// Resumes from `checkpoint` and trains to the end of `epochs` epochs.
weights resumed(const dataset<float>& data, const std::string& checkpoint, std::size_t epochs) {
    mlp<float> net({10, 16, 3}, 99);  // other initial weights: everything must come from the file
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer tr(net, opt, options(epochs));
    tr.resume(checkpoint);
    tr.fit(data);
    return weights_of(net);
}

/// Trains one epoch and leaves its checkpoint at `path`.
void first_epoch(const dataset<float>& data, const std::string& path) {
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer tr(net, opt, options(1).checkpoint(path));
    tr.fit(data);
}

using testing::child_signal;
using testing::in_child;

/// The io_error that training epoch 2 from `path` (resumed) throws, or a note that none came.
std::string second_epoch_error(const dataset<float>& data, const std::string& path) {
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer tr(net, opt, options(2).checkpoint(path));
    tr.resume(path);
    try {
        tr.fit(data);
    } catch (const io_error& e) {
        return e.what();
    }
    return "<no io_error>";
}

std::size_t files_in(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir)) ++n;
    return n;
}

}  // namespace

TEST_CASE("a checkpoint directory without write permission is an io_error naming the path; the old checkpoint survives") {
    const auto data = blobs();
    temp_dir dir;
    const std::string path = dir.file("state.ckpt");
    first_epoch(data, path);
    const auto old = io::read_file(path);

    // Permissions do not stop root, so a root test process drops to `nobody` in the child.
    REQUIRE(::chmod(dir.path.c_str(), 0555) == 0);
    const auto [status, message] = in_child([&]() -> std::string {
        if (!testing::drop_root()) return "cannot drop root";
        return second_epoch_error(data, path);
    });
    ::chmod(dir.path.c_str(), 0755);

    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(message == "write_file_atomically(): cannot create a temporary file next to '" + path +
                         "': Permission denied");
    CHECK(io::read_file(path) == old);
    CHECK(files_in(dir.path) == 1);
    CHECK(resumed(data, path, 2) == uninterrupted(data, 2));
}

TEST_CASE("a checkpoint path below a regular file is an io_error naming the path, also for root") {
    const auto data = blobs();
    temp_dir dir;
    const std::string blocker = dir.file("blocker");
    io::write_file_atomically(blocker, std::vector<std::uint8_t>{'x'});
    const std::string path = blocker + "/state.ckpt";
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer tr(net, opt, options(1).checkpoint(path));
    CHECK_THROWS_WITH_AS(tr.fit(data),
                         ("write_file_atomically(): cannot create a temporary file next to '" + path +
                          "': Not a directory")
                             .c_str(),
                         io_error);
    CHECK(io::read_file(blocker) == std::vector<std::uint8_t>{'x'});
}

TEST_CASE("a full disk is an io_error at any point of the write; the old checkpoint survives and still loads") {
    const auto data = blobs();
    temp_dir dir;
    const std::string path = dir.file("state.ckpt");
    first_epoch(data, path);
    const auto old = io::read_file(path);
    const auto expected = uninterrupted(data, 2);

    // RLIMIT_FSIZE makes write() fail with EFBIG past the limit, as ENOSPC would on a full
    // disk, without needing root or a small file system. Cut the new checkpoint off at its
    // first byte, in the middle and one byte before its end.
    for (const rlim_t limit : {rlim_t{0}, rlim_t{1}, rlim_t{old.size() / 2}, rlim_t{old.size() - 1}}) {
        CAPTURE(limit);
        const auto [status, message] = in_child([&]() -> std::string {
            ::signal(SIGXFSZ, SIG_IGN);
            struct rlimit small {};
            ::getrlimit(RLIMIT_FSIZE, &small);
            small.rlim_cur = limit;
            if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return "cannot set RLIMIT_FSIZE";
            return second_epoch_error(data, path);
        });
        CHECK(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
        CHECK(message == "write_file_atomically(): cannot write '" + path + "': File too large");
        CHECK(io::read_file(path) == old);
        CHECK(files_in(dir.path) == 1);  // the partial temporary file is gone
    }
    mlp<float> net({10, 16, 3}, 0);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    trainer probe(net, opt, options(2));
    REQUIRE_NOTHROW(probe.resume(path));
    CHECK(probe.next_epoch() == 1);
    CHECK(probe.next_batch() == 0);
    CHECK(resumed(data, path, 2) == expected);
}

TEST_CASE("a model that diverges between checkpoints never replaces the last good one") {
    // The weights turn NaN after an optimizer step (here: by hand, in the batch callback);
    // with a checkpoint after every batch the next save would otherwise store them.
    const auto data = blobs();
    temp_dir dir;
    const std::string path = dir.file("state.ckpt");
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    std::vector<std::uint8_t> last_good;
    auto o = options(3).checkpoint(path, 1).log_every(1).on_batch([&](const batch_report& r) {
        if (r.epoch == 1 && r.batch == 2) {
            last_good = io::read_file(path);  // written after batch 2 of epoch 2
            net.dense_layer(1).weight()(2, 5) = std::numeric_limits<float>::quiet_NaN();
        }
    });
    trainer tr(net, opt, o);
    CHECK_THROWS_WITH_AS(tr.fit(data),
                         ("trainer::fit(): after epoch 2, batch 3: trainer::save_checkpoint(): parameter '2.weight' "
                          "element 37 is nan; the model diverged, and '" + path +
                          "' keeps its last good checkpoint; training stopped")
                             .c_str(),
                         numeric_error);
    REQUIRE(!last_good.empty());
    CHECK(io::read_file(path) == last_good);
    CHECK(files_in(dir.path) == 1);

    // It loads, at the batch after the last good one, and training from it ends where an
    // uninterrupted run ends.
    mlp<float> again({10, 16, 3}, 0);
    sgd<float> opt2(sgd_options{}.momentum(0.9));
    trainer probe(again, opt2, options(3));
    REQUIRE_NOTHROW(probe.resume(path));
    CHECK(probe.next_epoch() == 1);
    CHECK(probe.next_batch() == 2);
    CHECK(resumed(data, path, 3) == uninterrupted(data, 3));
}

TEST_CASE("write_file_atomically killed at 300 random points leaves the old or the new file, never a torn one") {
    temp_dir dir;
    const std::string path = dir.file("state.bin");
    // Two contents of different sizes, so that a torn file could be neither of them.
    auto content = [](std::size_t size, std::uint64_t seed) {
        std::vector<std::uint8_t> out(size);
        rng gen(seed);
        for (auto& b : out) b = static_cast<std::uint8_t>(gen.uniform() * 256);
        return out;
    };
    const auto a = content(1 << 20, 1), b = content(3 << 19, 2);
    io::write_file_atomically(path, a);
    rng gen(2024);
    int torn = 0, old_or_new[2] = {0, 0}, inside_write = 0;
    for (int round = 0; round < 300; ++round) {
        child_signal writing;
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            io::write_file_atomically(path, b);
            writing.notify();  // the loop runs: from here on a kill lands in or between writes
            for (;;) {
                io::write_file_atomically(path, a);
                io::write_file_atomically(path, b);
            }
        }
        REQUIRE(writing.wait());
        ::usleep(static_cast<useconds_t>(gen.uniform(0, 4000)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        // a temporary file left behind: the kill landed between mkstemp and rename
        if (files_in(dir.path) > 1) ++inside_write;
        const auto now = io::read_file(path);
        if (now == a) {
            ++old_or_new[0];
        } else if (now == b) {
            ++old_or_new[1];
        } else {
            ++torn;
        }
    }
    MESSAGE("kills inside a write: ", inside_write, " of 300; file was a: ", old_or_new[0], ", b: ", old_or_new[1]);
    CHECK(torn == 0);
    // Writing is most of the child's loop once it has signalled, so with 300 kills a count
    // of zero would mean the kills never reach a write: the test would not test its claim.
    CHECK(inside_write > 0);
    CHECK(old_or_new[0] + old_or_new[1] == 300);
    // The next write removes what killed writers left.
    io::write_file_atomically(path, a);
    CHECK(files_in(dir.path) == 1);
}

TEST_CASE("a trainer killed 40 times while checkpointing every batch always leaves a loadable checkpoint") {
    const auto data = blobs();
    temp_dir dir;
    const std::string path = dir.file("state.ckpt");
    // 80 batches, a checkpoint after each: long enough that the kills spread over the run
    const std::size_t epochs = 20;
    rng gen(7);
    std::size_t last_position = 0;
    for (int round = 0; round < 40; ++round) {
        child_signal trained;
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mlp<float> net({10, 16, 3}, 2);
            sgd<float> opt(sgd_options{}.momentum(0.9));
            // The second batch's callback comes after this child wrote its first checkpoint,
            // so every round moves the run on, however slowly the machine runs.
            std::size_t batches = 0;
            auto o = options(epochs).checkpoint(path, 1).log_every(1).on_batch([&](const batch_report&) {
                if (++batches == 2) trained.notify();
            });
            trainer tr(net, opt, o);
            try {
                if (fs::exists(path)) tr.resume(path);
                tr.fit(data);
            } catch (...) {
                ::_exit(3);
            }
            ::_exit(0);
        }
        trained.wait();  // false: the child finished the run before its second batch
        ::usleep(static_cast<useconds_t>(gen.uniform(0, 4000)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        CAPTURE(round);
        CHECK((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
        REQUIRE(fs::exists(path));
        mlp<float> net({10, 16, 3}, 0);
        sgd<float> opt(sgd_options{}.momentum(0.9));
        trainer probe(net, opt, options(epochs));
        REQUIRE_NOTHROW(probe.resume(path));
        // old or new: the position never goes back
        const std::size_t position = probe.next_epoch() * 4 + probe.next_batch();
        CHECK(position >= last_position);
        last_position = position;
    }
    CHECK(resumed(data, path, epochs) == uninterrupted(data, epochs));
}

}  // namespace test_trainer_faults
