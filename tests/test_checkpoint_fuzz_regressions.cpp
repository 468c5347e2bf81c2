// Regression tests for what fuzz/fuzz_checkpoint.cpp found in trainer::resume() and the
// binary reader under it. The trainer here is the fuzz target's (fuzz/checkpoint_setup.hpp):
// the inputs only reach the code they test with that architecture, method, seed and batch size.
#include <doctest/doctest.h>
#include <zlib.h>

#include <advaug/data/dataset.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/optim/adam.hpp>
#include <advaug/optim/optimizer.hpp>
#include <advaug/optim/sgd.hpp>
#include <advaug/training/trainer.hpp>
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support/temp_dir.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_checkpoint_fuzz_regressions {

using namespace advaug;

namespace {

train_options fuzz_options() {
    static std::ostringstream sink;
    return train_options{}
        .method(training_method::fgsm)
        .epsilon(0.1)
        .learning_rate(lr_schedule::constant(0.05))
        .batch_size(4)
        .epochs(2)
        .seed(5)
        .progress(progress_style::none)
        .output(sink);
}

dataset<float> fuzz_data() {
    std::vector<float> x = {0.1f, 0.2f, 0.3f, 0.9f, 0.8f, 0.7f, 0.2f, 0.1f, 0.3f, 0.8f, 0.9f, 0.6f,
                            0.0f, 0.3f, 0.2f, 0.7f, 0.7f, 0.9f, 0.3f, 0.2f, 0.1f, 1.0f, 0.8f, 0.8f};
    auto y = label_vector::from_shape({8});
    for (std::size_t i = 0; i < 8; ++i) y(i) = static_cast<std::int64_t>(i % 2);
    return dataset<float>(std::move(x), {3}, std::move(y), 2);
}

/// `body` followed by its CRC-32, as save_checkpoint() ends a file.
void write_with_crc(const std::string& path, std::vector<std::uint8_t> body) {
    const auto crc =
        static_cast<std::uint32_t>(::crc32(0L, body.data(), static_cast<uInt>(body.size())));
    const auto* p = reinterpret_cast<const std::uint8_t*>(&crc);
    body.insert(body.end(), p, p + 4);
    io::write_file_atomically(path, body);
}

std::vector<std::uint8_t> optimizer_state(const adam<float>& opt) {
    io::binary_writer w;
    opt.save_state(w);
    return w.bytes();
}

}  // namespace

TEST_CASE(
    "resume(): a parameter shape of length 0 is refused as another architecture, without UB") {
    // Minimized by libFuzzer (without its CRC, which the fuzz target fixes up): parameter 0 has
    // an empty name and a shape array of 0 entries. binary_reader::read_vector() passed the null
    // data() of the empty vector to memcpy, which UBSan reports.
    const std::vector<std::uint8_t> body = {
        0x41, 0x44, 0x56, 0x41, 0x55, 0x47, 0x43, 0x4b, 0x01, 0x00, 0x00, 0x00, 0x04, 0x04, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x66, 0x67, 0x73, 0x6d, 0x05, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xa0, 0x4d, 0x94, 0xe8, 0x3f, 0x00, 0x00, 0x00, 0x60, 0xf4, 0xf2, 0xe6, 0x3f, 0x00, 0x00,
        0x00, 0xe0, 0xa6, 0x35, 0xea, 0x3f, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x1b, 0x1d, 0x57, 0x43, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    };
    testing::temp_dir dir;
    const std::string path = dir.file("fuzz.ckpt");
    write_with_crc(path, body);

    mlp<float> net({3, 4, 2}, 1);
    adam<float> opt;
    trainer tr(net, opt, fuzz_options());
    const std::string message =
        "trainer::resume(): the checkpoint '" + path +
        "' has parameter 0 '' of shape [], the model has '0.weight' of shape [4, 3] "
        "(another architecture)";
    CHECK_THROWS_WITH_AS(tr.resume(path), message.c_str(), std::invalid_argument);
}

TEST_CASE(
    "resume(): an error after the optimizer's part of the file leaves the optimizer unchanged") {
    // fuzz_checkpoint found that a file refused after the optimizer had read its state (here:
    // one byte too many at the end) left that state in the optimizer, though resume() changes
    // nothing unless it succeeds.
    testing::temp_dir dir;
    const std::string path = dir.file("trained.ckpt");
    {
        mlp<float> net({3, 4, 2}, 1);
        adam<float> opt;
        trainer tr(net, opt, fuzz_options().epochs(1));
        tr.fit(fuzz_data());
        tr.save_checkpoint(path);
    }
    std::vector<std::uint8_t> body = io::read_file(path);
    body.resize(body.size() - 4);  // without its CRC
    body.push_back(0);
    const std::string bad = dir.file("one_byte_too_many.ckpt");
    write_with_crc(bad, body);

    mlp<float> net({3, 4, 2}, 2);
    adam<float> opt;
    trainer tr(net, opt, fuzz_options());
    const auto before = optimizer_state(opt);
    const std::string message = "trainer::resume(): '" + bad +
                                "': end of checkpoint has 1 unexpected bytes (at byte " +
                                std::to_string(body.size() - 1) + ")";
    CHECK_THROWS_WITH_AS(tr.resume(bad), message.c_str(), io_error);
    CHECK(opt.step_count() == 0);
    CHECK(optimizer_state(opt) == before);
    CHECK(tr.next_epoch() == 0);

    // The file without the extra byte is accepted, and brings the optimizer's state along.
    tr.resume(path);
    CHECK(opt.step_count() == 2);
    CHECK(tr.next_epoch() == 1);
}

TEST_CASE(
    "resume(): a checkpoint with a non-finite weight is refused, as save_checkpoint() refuses to "
    "write one") {
    // fuzz_checkpoint found a checkpoint with a NaN weight that resume() accepted and the next
    // save_checkpoint() refused ("the model diverged"): the file can only be damaged.
    testing::temp_dir dir;
    const std::string path = dir.file("trained.ckpt");
    float first_weight = 0;
    {
        mlp<float> net({3, 4, 2}, 1);
        adam<float> opt;
        trainer tr(net, opt, fuzz_options().epochs(1));
        tr.fit(fuzz_data());
        tr.save_checkpoint(path);
        first_weight = net.parameters()[0].value[0];
    }
    std::vector<std::uint8_t> body = io::read_file(path);
    body.resize(body.size() - 4);
    // '0.weight' element 0 is the first occurrence of its bytes after the parameter's name
    const std::string name = "0.weight";
    const auto name_at = std::search(body.begin(), body.end(), name.begin(), name.end());
    REQUIRE(name_at != body.end());
    const auto* w = reinterpret_cast<const std::uint8_t*>(&first_weight);
    const auto value_at = std::search(name_at, body.end(), w, w + 4);
    REQUIRE(value_at != body.end());
    const float inf = std::numeric_limits<float>::infinity();
    std::memcpy(&*value_at, &inf, 4);
    const std::string bad = dir.file("inf_weight.ckpt");
    write_with_crc(bad, body);

    mlp<float> net({3, 4, 2}, 2);
    const auto before = net.parameters()[0].value[0];
    adam<float> opt;
    trainer tr(net, opt, fuzz_options());
    const std::string message =
        "trainer::resume(): '" + bad +
        "' has parameter '0.weight' element 0 = inf; save_checkpoint() never writes a "
        "non-finite weight, so the file is damaged";
    CHECK_THROWS_WITH_AS(tr.resume(bad), message.c_str(), io_error);
    CHECK(net.parameters()[0].value[0] == before);
    CHECK(opt.step_count() == 0);
}

}  // namespace test_checkpoint_fuzz_regressions
