// A classifier without parameters() is not trainable: one error that names the member.
// expect-error: lacks member `std::vector<advaug::parameter_view<value_type>> parameters\(\)`
#include <advaug/advaug.hpp>

struct untrainable {
    using value_type = double;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const advaug::tensor<double, 2>&, cache_type&, advaug::tensor<double, 2>&) const {}
    void input_gradient(cache_type&, const advaug::tensor<double, 2>&,
                        advaug::tensor<double, 2>&) const {}
    void parameter_gradient(cache_type&, const advaug::tensor<double, 2>&) {}
    void zero_grad() {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

int main() {
    untrainable model;
    auto x = advaug::tensor<double, 2>::from_shape({1, 3});
    return static_cast<int>(advaug::check_parameter_gradient(model, x).checked);
}
