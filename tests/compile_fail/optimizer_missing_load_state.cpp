// An optimizer without load_state(), given to the trainer: one error that names the member.
// expect-error: lacks member `void load_state\(advaug::io::binary_reader&, const std::vector<advaug::parameter_view<value_type>>& params\)`
#include <advaug/advaug.hpp>

struct optimizer {
    void step(std::vector<advaug::parameter_view<float>>&, double) {}
    void save_state(advaug::io::binary_writer&) const {}
    // load_state() is missing
};

advaug::dataset<float> data() {
    auto y = advaug::label_vector::from_shape({2});
    y(0) = 0;
    y(1) = 1;
    return advaug::dataset<float>({0.1f, 0.2f, 0.3f, 0.4f}, {2}, std::move(y), 2);
}

int main() {
    advaug::mlp<float> model({2, 4, 2});
    optimizer opt;
    advaug::trainer trainer(model, opt, advaug::train_options{}.epsilon(0.1));
    trainer.fit(data());
    return static_cast<int>(trainer.next_epoch());
}
