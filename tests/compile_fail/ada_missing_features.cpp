// A trainable model without the optional features() member given to ada_perturb(): one error
// that names the member feature-space augmentation needs.
// expect-error: feature-space augmentation needs the optional member `const advaug::tensor<value_type, 2>& features
#include <advaug/advaug.hpp>

struct model {
    struct cache_type {};
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    std::size_t num_classes() const { return 2; }
    void forward(const advaug::tensor<float, 2>&, cache_type&, advaug::tensor<float, 2>&) const {}
    void input_gradient(cache_type&, const advaug::tensor<float, 2>&, advaug::tensor<float, 2>&) const {}
    void parameter_gradient(cache_type&, const advaug::tensor<float, 2>&) {}
    void zero_grad() {}
    std::vector<advaug::parameter_view<float>> parameters() { return {}; }
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
    // features() and input_gradient_with_features() are missing
};

int main() {
    const model m;
    auto x = advaug::tensor<float, 2>::from_shape({1, 2});
    advaug::label_vector y = {0};
    auto moved = advaug::ada_perturb(m, x, y, advaug::ada_options{});
    return static_cast<int>(moved.size());
}
