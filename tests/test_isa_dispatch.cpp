// backend/cpu.hpp: kernels compiled for the baseline and for AVX2, chosen at run time. The two
// versions must give the same bits, so that results do not depend on the CPU: every family
// whose row kernels are dispatched (affine and displacement_field: locate, sample and the
// coordinate gradient; gaussian_blur: the passes) is run both ways on the same batch, its
// forward pass and both vector-Jacobian products compared bit for bit. Budgets that move samples
// far outside the image (rotations to 90 degrees, shifts of 40 pixels, flows of 9) and inputs
// outside the domain reach the frame, the clamps and the clip.
#include <doctest/doctest.h>

#include <advaug/backend/cpu.hpp>
#include <advaug/perturbations/blur.hpp>
#include <advaug/perturbations/spatial.hpp>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "support/models.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_isa_dispatch {

using namespace advaug;

namespace {

/// Sets whether advaug may take its AVX2 kernels, and allows them again when it goes out of
/// scope, so that a throwing call cannot leave the rest of the process on the baseline ones.
class avx2_allowed {
public:
    explicit avx2_allowed(bool allow) { set(allow); }
    ~avx2_allowed() { set(true); }
    avx2_allowed(const avx2_allowed&) = delete;
    avx2_allowed& operator=(const avx2_allowed&) = delete;
    static void set(bool allow) { backend::detail::avx2_kernels_allowed().store(allow); }
};

template <class T>
bool same_bits(const tensor<T, 2>& a, const tensor<T, 2>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The family's outputs on one batch: apply, vjp_theta and vjp_input.
template <class T>
struct outputs {
    tensor<T, 2> out, dtheta, dx;
};

template <class F, class T = typename F::value_type>
outputs<T> run(const F& family, const tensor<T, 2>& x, const tensor<T, 2>& theta,
               const tensor<T, 2>& g) {
    outputs<T> o;
    family.apply(x, theta, o.out);
    family.vjp_theta(x, theta, g, o.dtheta);
    family.vjp_input(x, theta, g, o.dx);
    return o;
}

/// Runs `family` with the AVX2 kernels and with the baseline ones; checks the same bits.
/// theta is drawn in [-spread, spread] per parameter.
template <class F, class T = typename F::value_type>
void check_both_ways(const std::string& name, const F& family, double spread) {
    const std::size_t n = 9, d = family.input_size(), p = family.num_params();
    const auto x = testing::uniform_batch<T>(n, d, 11, -0.2, 1.2);  // some pixels outside [0, 1]: the clip
    const auto g = testing::uniform_batch<T>(n, d, 12, -1.0, 1.0);
    auto theta = testing::uniform_batch<T>(n, p, 13, -spread, spread);
    for (std::size_t k = 0; k < p; ++k) theta(0, k) = T(0);  // the identity row
    outputs<T> fast, base;
    {
        const avx2_allowed on(true);
        fast = run(family, x, theta, g);
    }
    {
        const avx2_allowed off(false);
        base = run(family, x, theta, g);
    }
    CAPTURE(name);
    CHECK(same_bits(fast.out, base.out));
    CHECK(same_bits(fast.dtheta, base.dtheta));
    CHECK(same_bits(fast.dx, base.dx));
}

template <class T>
void check_families() {
    const image_shape gray{1, 28, 28}, colour{3, 13, 17};
    for (const image_shape& shape : {gray, colour}) {
        for (padding pad : {padding::zeros, padding::border}) {
            const std::string where = std::to_string(shape.channels) + " channels, " +
                                      (pad == padding::zeros ? "zeros" : "border");
            // Rotations to 90 degrees, scales to 2x, translations past the image (the frame).
            check_both_ways<affine<T>>(
                "affine, " + where,
                affine<T>(shape, affine_budget{.rotation = symmetric(90), .scale_x = symmetric(1),
                                               .scale_y = symmetric(1), .shear = symmetric(1),
                                               .translate_x = symmetric(40),
                                               .translate_y = symmetric(40)},
                          pad),
                40);
            check_both_ways<displacement_field<T>>(
                "displacement_field, " + where,
                displacement_field<T>(shape, displacement_budget{.grid = 5, .max_displacement = 9},
                                      pad),
                9);
        }
        check_both_ways<gaussian_blur<T>>("gaussian_blur",
                                          gaussian_blur<T>(shape, interval{0, 2.5}), 2.5);
    }
}

}  // namespace

TEST_CASE("the AVX2 and baseline kernels of the image families give the same bits") {
    if (!backend::detail::avx2_kernels_available()) {
        testing::skip("this CPU has no AVX2, or this build does not dispatch (ADVAUG_NO_ISA_DISPATCH, "
                      "not GCC or clang, not x86): there is one version of each kernel");
        return;
    }
    SUBCASE("float") { check_families<float>(); }
    SUBCASE("double") { check_families<double>(); }
}

TEST_CASE("turning the AVX2 kernels off takes the baseline ones") {
    {
        const avx2_allowed off(false);
        CHECK_FALSE(backend::detail::avx2_kernels());
    }
    CHECK(backend::detail::avx2_kernels() == backend::detail::avx2_kernels_available());
}

}  // namespace test_isa_dispatch
