// A layer whose append_buffers() forgets the prefix would be skipped silently if optional
// members were only probed; it is refused, naming the signature.
// expect-error: the layer's member `append_buffers` does not have the signature
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
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
    static constexpr advaug::optional_member optional_members =
        advaug::optional_member::append_buffers;
    void append_buffers(std::vector<advaug::parameter_view<float>>&) {}
};

int main() {
    auto net = advaug::sequential<float, 2>({4}).add(broken_layer{});
    return static_cast<int>(net.size());
}
