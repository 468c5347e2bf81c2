// A model without mode(), used by an attack and by the trainer: one error that names the member.
// expect-error: lacks members `advaug::mode mode\(\) const` and `void set_mode
#include <advaug/advaug.hpp>

struct model {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const advaug::tensor<float, 2>&, cache_type&, advaug::tensor<float, 2>&) const {}
    void input_gradient(cache_type&, const advaug::tensor<float, 2>&,
                        advaug::tensor<float, 2>&) const {}
    void parameter_gradient(cache_type&, const advaug::tensor<float, 2>&) {}
    void zero_grad() {}
    std::vector<advaug::parameter_view<float>> parameters() { return {}; }
    // mode() is missing
    void set_mode(advaug::mode) {}
};

advaug::dataset<float> data() {
    auto y = advaug::label_vector::from_shape({2});
    y(0) = 0;
    y(1) = 1;
    return advaug::dataset<float>({0.1f, 0.2f, 0.3f, 0.4f}, {2}, std::move(y), 2);
}

int main() {
    model m;
    auto x = advaug::tensor<float, 2>::from_shape({1, 2});
    advaug::label_vector y = {0};
    auto x_adv = advaug::fgsm(m, x, y, advaug::fgsm_options{}.epsilon(0.1));
    advaug::sgd<float> optimizer;
    advaug::trainer trainer(m, optimizer, advaug::train_options{}.epsilon(0.1));
    trainer.fit(data());
    return static_cast<int>(x_adv.size());
}
