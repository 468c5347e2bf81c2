#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "support/models.hpp"

using namespace advaug;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir() {
    const auto dir = fs::temp_directory_path() / ("advaug_test_model_file_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}
}  // namespace

TEST_CASE("a model saved and loaded gives the same logits, batch-norm statistics included") {
    const auto dir = temp_dir();
    cnn<float> a(1, weight_init::he_normal, true), b(2, weight_init::he_normal, true);
    // move the running statistics away from their initial values
    auto x = tensor<float, 4>::from_shape({4, 1, 28, 28});
    rng gen(3);
    for (auto& v : x) v = static_cast<float>(gen.uniform());
    typename cnn<float>::cache_type c;
    tensor<float, 2> logits, other;
    a.forward(x, c, logits);
    a.parameter_gradient(c, logits);
    const auto path = (dir / "cnn.npz").string();
    io::save_model(path, a);
    io::load_model(path, b);
    a.set_mode(mode::eval);
    b.set_mode(mode::eval);
    a.forward(x, c, logits);
    typename cnn<float>::cache_type c2;
    b.forward(x, c2, other);
    CHECK(logits == other);
    CHECK(io::load_metadata(path).at("architecture") == a.describe());
    fs::remove_all(dir);
}

TEST_CASE("a file of another architecture is refused and the model is unchanged") {
    const auto dir = temp_dir();
    const auto path = (dir / "mlp.npz").string();
    mlp<float> small({784, 64, 10}, 1);
    io::save_model(path, small);
    mlp<float> big({784, 128, 10}, 1);
    const auto before = testing::snapshot(big);
    CHECK_THROWS_WITH_AS(io::load_model(path, big),
                         ("load_model(): '" + path +
                          "' holds the architecture 'sequential [784] -> dense(784->64) -> relu -> dense(64->10)', "
                          "the model is 'sequential [784] -> dense(784->128) -> relu -> dense(128->10)'")
                             .c_str(),
                         io_error);
    cnn<float> conv(1);
    CHECK_THROWS_AS(io::load_model(path, conv), io_error);
    CHECK(testing::snapshot(big) == before);
    fs::remove_all(dir);
}
