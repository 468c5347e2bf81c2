// A discrete perturbation family without max_active(): one error that names the member.
// expect-error: discrete perturbation family lacks member `std::size_t max_active\(\) const`
#include <advaug/perturbations/check.hpp>

struct mask_without_limit {
    using value_type = double;
    using batch = advaug::tensor<double, 2>;
    static constexpr advaug::perturbation_kind kind = advaug::perturbation_kind::discrete;
    std::size_t input_size() const { return 2; }
    std::size_t num_params() const { return 2; }
    void apply(const batch& x, const batch&, batch& out) const { out = x; }
    void vjp_theta(const batch&, const batch&, const batch& dout, batch& dt) const { dt = dout; }
    void vjp_input(const batch&, const batch&, const batch& dout, batch& dx) const { dx = dout; }
    void identity(std::size_t n, batch& theta) const {
        theta = advaug::tensor<double, 2>::from_shape({n, 2});
    }
    void sample(std::size_t n, std::uint64_t, batch& theta) const { identity(n, theta); }
    void project(batch&) const {}
    bool contains(const batch&) const { return true; }
    std::vector<double> param_scale() const { return {1.0, 1.0}; }
};

int main() {
    const mask_without_limit family;
    const auto x = advaug::tensor<double, 2>::from_shape({1, 2});
    const auto theta = advaug::tensor<double, 2>::from_shape({1, 2});
    return static_cast<int>(advaug::check_perturbation_gradients(family, x, theta).input.checked);
}
