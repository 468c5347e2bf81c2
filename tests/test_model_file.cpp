#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_model_file {

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

TEST_CASE("read_architecture says which bundled model a file holds: mlp widths and activation, cnn, cnn-bn") {
    const auto dir = temp_dir();
    const auto mlp_path = (dir / "mlp.npz").string();
    mlp<float> net({6, 5, 4, 3}, 1);
    io::save_model(mlp_path, net);
    const auto info = io::read_architecture(mlp_path);
    CHECK(info.kind == io::architecture_kind::mlp);
    CHECK(info.widths == std::vector<std::size_t>{6, 5, 4, 3});
    CHECK(info.activation == "relu");
    CHECK(info.description == net.describe());

    // tanh between the dense layers
    advaug::rng gen(2);
    auto tanh_net = sequential<float, 2>({3}).add(dense<float>(3, 4, gen)).add(tanh_layer<float, 2>{})
                        .add(dense<float>(4, 2, gen));
    const auto tanh_info = io::parse_architecture(tanh_net.describe());
    CHECK(tanh_info.kind == io::architecture_kind::mlp);
    CHECK(tanh_info.widths == std::vector<std::size_t>{3, 4, 2});
    CHECK(tanh_info.activation == "tanh");

    const auto cnn_path = (dir / "cnn.npz").string(), bn_path = (dir / "cnn-bn.npz").string();
    cnn<float> plain(3), with_bn(4, weight_init::he_normal, true);
    io::save_model(cnn_path, plain);
    io::save_model(bn_path, with_bn);
    CHECK(io::read_architecture(cnn_path).kind == io::architecture_kind::cnn);
    CHECK(io::read_architecture(bn_path).kind == io::architecture_kind::cnn_bn);
    CHECK(io::read_architecture(bn_path).widths.empty());

    // no metadata (save_parameters), and descriptions of no bundled architecture
    const auto bare = (dir / "bare.npz").string();
    io::save_parameters(bare, net.parameters());
    CHECK(io::read_architecture(bare).kind == io::architecture_kind::none);
    CHECK(io::parse_architecture("sequential [4] -> dense(4->3) -> relu").kind == io::architecture_kind::other);
    CHECK(io::parse_architecture("sequential [4] -> dense(4->3) -> relu -> dense(2->2)").kind ==
          io::architecture_kind::other);  // widths that do not chain
    CHECK(io::parse_architecture("sequential [4] -> dense(4->3) -> tanh -> dense(3->2) -> relu -> dense(2->2)")
              .kind == io::architecture_kind::other);  // mixed activations
    CHECK(io::parse_architecture("softmax_regression 784-10").kind == io::architecture_kind::other);
    CHECK(std::string(io::to_string(io::architecture_kind::cnn_bn)) == "cnn-bn");
    CHECK_THROWS_AS(io::read_architecture((dir / "missing.npz").string()), io_error);
    fs::remove_all(dir);
}

}  // namespace test_model_file
