// A perturbation family without vjp_theta(): one error that names the member.
// expect-error: perturbation family lacks member `void vjp_theta\(
#include <advaug/perturbations/check.hpp>

struct no_vjp_theta {
    using value_type = double;
    using batch = advaug::tensor<double, 2>;
    std::size_t input_size() const { return 2; }
    std::size_t num_params() const { return 1; }
    void apply(const batch& x, const batch&, batch& out) const { out = x; }
    void vjp_input(const batch&, const batch&, const batch& dout, batch& dx) const { dx = dout; }
    void identity(std::size_t n, batch& theta) const {
        theta = advaug::tensor<double, 2>::from_shape({n, 1});
    }
    void sample(std::size_t n, std::uint64_t, batch& theta) const { identity(n, theta); }
    void project(batch&) const {}
    bool contains(const batch&) const { return true; }
    std::vector<double> param_scale() const { return {1.0}; }
};

int main() {
    const no_vjp_theta family;
    const auto x = advaug::tensor<double, 2>::from_shape({1, 2});
    const auto theta = advaug::tensor<double, 2>::from_shape({1, 1});
    return static_cast<int>(advaug::check_perturbation_gradients(family, x, theta).input.checked);
}
