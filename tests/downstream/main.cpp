// Uses advaug as a downstream project would; returns nonzero if FGSM leaves its budget.
#include <advaug/advaug.hpp>

#include <cmath>
#include <cstddef>
#include <iostream>

int main() {
    advaug::mlp<float> net({4, 8, 3}, /*seed=*/1);

    advaug::tensor<float, 2> x = advaug::tensor<float, 2>::from_shape({5, 4});
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        for (std::size_t j = 0; j < x.shape(1); ++j) {
            x(i, j) = static_cast<float>((i * 4 + j) % 7) / 6.0f;  // in [0, 1]
        }
    }
    advaug::label_vector y = {0, 1, 2, 0, 1};

    auto x_adv = advaug::fgsm(net, x, y, advaug::fgsm_options{}.epsilon(0.1));

    if (x_adv.shape(0) != x.shape(0) || x_adv.shape(1) != x.shape(1)) {
        std::cerr << "downstream: fgsm changed the shape\n";
        return 1;
    }
    double max_diff = 0.0;
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        for (std::size_t j = 0; j < x.shape(1); ++j) {
            double d = std::abs(static_cast<double>(x_adv(i, j)) - static_cast<double>(x(i, j)));
            if (std::isnan(d) || d > max_diff) max_diff = d;  // a NaN sticks
        }
    }
    if (!(max_diff <= 0.1 + 1e-6)) {
        std::cerr << "downstream: max |x_adv - x| = " << max_diff << " exceeds epsilon 0.1\n";
        return 1;
    }
    std::cout << "downstream ok (max |x_adv - x| = " << max_diff << ")\n";
    return 0;
}
