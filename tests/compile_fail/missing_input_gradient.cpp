// A model without input_gradient() passed to an attack: one error that names the member.
// expect-error: lacks member `void input_gradient\(cache_type&
#include <advaug/advaug.hpp>

struct broken_model {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 10; }
    void forward(const advaug::tensor<float, 2>&, cache_type&, advaug::tensor<float, 2>&) const {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

int main() {
    broken_model model;
    advaug::tensor<float, 2> x = advaug::tensor<float, 2>::from_shape({1, 4});
    advaug::label_vector y = {0};
    auto x_adv = advaug::fgsm(model, x, y, advaug::fgsm_options{}.epsilon(0.1));
    return static_cast<int>(x_adv.size());
}
