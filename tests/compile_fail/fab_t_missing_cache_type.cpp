// A model without cache_type passed to fab_t() without a workspace: one error that names the
// member. The model is checked before the workspace is built, whose members name its types.
// expect-error: lacks a default-constructible member type `cache_type`
#include <advaug/advaug.hpp>

struct model {
    struct scratch {};
    using value_type = float;
    static constexpr std::size_t input_rank = 2;
    // cache_type is missing
    std::size_t num_classes() const { return 2; }
    void forward(const advaug::tensor<float, 2>&, scratch&, advaug::tensor<float, 2>&) const {}
    void input_gradient(scratch&, const advaug::tensor<float, 2>&,
                        advaug::tensor<float, 2>&) const {}
    advaug::mode mode() const { return advaug::mode::eval; }
    void set_mode(advaug::mode) {}
};

int main() {
    const model m;
    auto x = advaug::tensor<float, 2>::from_shape({1, 2});
    advaug::label_vector y = {0};
    auto result = advaug::fab_t(m, x, y, advaug::fab_t_options{}.epsilon(0.1));
    return static_cast<int>(result.size());
}
