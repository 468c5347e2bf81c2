// Where the tests find the installed Fashion-MNIST data set, and what a test that needs it says
// when it skips because the data set is not installed.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace advaug::testing {

/// Where the dataset-fashion-mnist package installs the data set.
inline constexpr const char* fashion_mnist_dir = "/usr/share/datasets/fashion-mnist";

/// Why a test skips (testing::skip) for want of the data set.
inline std::string fashion_mnist_skip_message() {
    return std::string(fashion_mnist_dir) +
           " is missing (install dataset-fashion-mnist)";
}

/// fashion_mnist_dir when its test set (t10k images and labels) is installed, else std::nullopt;
/// a test then calls `testing::skip(fashion_mnist_skip_message())` and returns.
inline std::optional<std::filesystem::path> fashion_mnist_test_set() {
    const std::filesystem::path dir = fashion_mnist_dir;
    if (!std::filesystem::exists(dir / "t10k-images-idx3-ubyte.gz") ||
        !std::filesystem::exists(dir / "t10k-labels-idx1-ubyte.gz")) {
        return std::nullopt;
    }
    return dir;
}

}  // namespace advaug::testing
