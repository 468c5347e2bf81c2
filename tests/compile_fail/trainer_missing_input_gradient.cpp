// The case: a model without input_gradient() given to the trainer alone, with the
// trainer's own calls (fit, compute_gradient, checkpoints): one error that names the member.
// expect-error: lacks member `void input_gradient\(cache_type&, const advaug::tensor<value_type, 2>& dlogits, advaug::tensor<value_type, input_rank>& dx\) const`
#include <advaug/advaug.hpp>

struct model {
    using value_type = double;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {};
    std::size_t num_classes() const { return 2; }
    void forward(const advaug::tensor<double, 2>&, cache_type&, advaug::tensor<double, 2>&) const {}
    void parameter_gradient(cache_type&, const advaug::tensor<double, 2>&) {}
    void zero_grad() {}
    std::vector<advaug::parameter_view<double>> parameters() { return {}; }
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

int main() {
    model m;
    advaug::adam<double> optimizer;
    advaug::trainer<model, advaug::adam<double>> trainer(m, optimizer, advaug::train_options{});
    auto x = advaug::tensor<double, 2>::from_shape({1, 2});
    advaug::label_vector y = {0};
    const auto losses = trainer.compute_gradient(x, y, 0.1, 1);
    trainer.save_checkpoint("model.ckpt");
    trainer.resume("model.ckpt");
    return static_cast<int>(losses.loss);
}
