// A model that declares its own tensor types (as the device models do) but lacks
// parameter_gradient() for them, given to the trainer: one error that names the member.
// expect-error: lacks member `void parameter_gradient\(cache_type&, const advaug::tensor<value_type, 2>& dlogits\)` \(or the model's logits_type\)
#include <advaug/advaug.hpp>

struct model {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    using input_type = advaug::tensor<float, 2>;
    using logits_type = advaug::tensor<float, 2>;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const input_type&, cache_type&, logits_type&) const {}
    void input_gradient(cache_type&, const logits_type&, input_type&) const {}
    // parameter_gradient() is missing
    void zero_grad() {}
    std::vector<advaug::parameter_view<float>> parameters() { return {}; }
    advaug::mode mode() const { return advaug::mode::eval; }
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
    advaug::sgd<float> optimizer;
    advaug::trainer trainer(m, optimizer, advaug::train_options{}.epsilon(0.1));
    trainer.fit(data());
    return 0;
}
