// A family that declares the recorded apply but not the recorded vjp: one error saying that
// the recorded pass needs both members (or neither), rather than the search silently taking
// the plain members.
// expect-error: perturbation family declares one half of the recorded pass
#include <advaug/perturbations/check.hpp>

struct half_recorded {
    using value_type = double;
    using batch = advaug::tensor<double, 2>;
    std::size_t input_size() const { return 2; }
    std::size_t num_params() const { return 1; }
    void apply(const batch& x, const batch&, batch& out) const { out = x; }
    void apply(const batch& x, const batch&, batch& out, advaug::family_tape&) const { out = x; }
    void vjp_theta(const batch& x, const batch&, const batch&, batch& dtheta) const {
        dtheta = advaug::tensor<double, 2>::from_shape({x.shape()[0], 1});
        dtheta.fill(0);
    }
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
    const half_recorded family;
    const auto x = advaug::tensor<double, 2>::from_shape({1, 2});
    const auto theta = advaug::tensor<double, 2>::from_shape({1, 1});
    return static_cast<int>(advaug::check_perturbation_gradients(family, x, theta).input.checked);
}
