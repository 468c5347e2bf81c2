// A layer without cache_type added to sequential: one error that names the member.
// expect-error: the layer lacks a default-constructible member type `cache_type`
#include <advaug/models/sequential.hpp>

using X = advaug::tensor<float, 2>;

struct broken_layer {
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    static constexpr std::size_t output_rank = 2;
    struct record {};  // named otherwise: sequential cannot find it
    void forward(const X& x, record&, X& y) const { y = x; }
    void backward_input(const record&, const X& dy, X& dx) const { dx = dy; }
    void accumulate_gradient(const record&, const X&) {}
    void zero_grad() {}
    std::vector<advaug::parameter_view<float>> parameters() { return {}; }
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

int main() {
    auto net = advaug::sequential<float, 2>({4}).add(broken_layer{});
    return static_cast<int>(net.size());
}
