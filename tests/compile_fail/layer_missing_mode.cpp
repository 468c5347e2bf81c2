// A layer without mode() added to sequential: one error that names the member.
// expect-error: the layer lacks member `advaug::mode mode\(\) const`
#include <advaug/models/sequential.hpp>

using X = advaug::tensor<float, 2>;

struct broken_layer {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    struct cache_type {};
    void forward(const X& x, cache_type&, X& y) const { y = x; }
    void backward_input(const cache_type&, const X& dy, X& dx) const { dx = dy; }
    void accumulate_gradient(const cache_type&, const X&) {}
    void zero_grad() {}
    std::vector<advaug::parameter_view<float>> parameters() { return {}; }
    void set_mode(advaug::mode) {}
};

int main() {
    auto net = advaug::sequential<float, 2>({4}).add(broken_layer{});
    return static_cast<int>(net.size());
}
