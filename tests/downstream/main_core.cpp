// Uses advaug::core as a downstream project would: models, attacks and gradient checks, with
// neither zlib nor libzip (this program is linked without them). Returns nonzero on failure.
#include <advaug/attacks/fgsm.hpp>
#include <advaug/gradcheck/gradient_check.hpp>
#include <advaug/models/mlp.hpp>

#include <cmath>
#include <cstddef>
#include <iostream>

int main() {
    advaug::mlp<double> net({4, 8, 3}, /*seed=*/1);
    advaug::tensor<double, 2> x = advaug::tensor<double, 2>::from_shape({5, 4});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<double>(i % 7) / 6.0;
    const advaug::label_vector y = {0, 1, 2, 0, 1};

    const auto x_adv = advaug::fgsm(net, x, y, advaug::fgsm_options{}.epsilon(0.1));
    double max_diff = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double d = std::abs(x_adv.data()[i] - x.data()[i]);
        if (std::isnan(d) || d > max_diff) max_diff = d;  // a NaN sticks
    }
    const auto check = advaug::check_input_gradient(net, x);
    if (!(max_diff <= 0.1 + 1e-12) || !check.passed(1e-4)) {
        std::cerr << "downstream core: max |x_adv - x| = " << max_diff
                  << ", input gradient relative error " << check.relative_error << "\n";
        return 1;
    }
    std::cout << "downstream core ok (max |x_adv - x| = " << max_diff << ")\n";
    return 0;
}
