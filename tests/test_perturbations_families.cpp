// The perturbation families (include/advaug/perturbations/): derivatives against finite
// differences in theta and x, the recorded pass, the identity, the budget, the input domain and
// bad input.
#include <doctest/doctest.h>

#include <advaug/perturbations/perturbations.hpp>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "support/check_throws.hpp"
#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_perturbations_families {

using namespace advaug;

namespace {

const image_shape small_image{2, 5, 6};  // 60 features, channel-major

// Tolerances of the finite-difference checks (gradcheck/gradient_check.hpp).
template <class T>
gradient_check_options fd_options() {
    return gradient_check_options().step(std::is_same_v<T, float> ? 1e-3 : 1e-6);
}
template <class T>
double fd_tolerance() {
    return std::is_same_v<T, float> ? 2e-3 : 1e-7;  // measured: about 1e-4 and 1e-9
}

/// theta drawn from the family's budget, a generic point away from kinks.
template <class F>
tensor<typename F::value_type, 2> interior_theta(const F& f, std::size_t n, std::uint64_t key) {
    tensor<typename F::value_type, 2> theta;
    f.sample(n, key, theta);
    return theta;
}

template <class T>
bool same_bits(const tensor<T, 2>& a, const tensor<T, 2>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

/// The recorded pass (apply_recorded, then vjp_recorded from its tape) gives apply's and
/// vjp_both's values bit for bit, for theta with its first row the identity (which apply copies)
/// and for inputs partly outside [0, 1] (the clip); the same through an any_family, and a tape
/// reused for a second batch.
template <class F>
void check_recorded(const F& f, const tensor<typename F::value_type, 2>& x,
                    tensor<typename F::value_type, 2> theta, const char* what) {
    using T = typename F::value_type;
    INFO(std::string(what) << ": the recorded pass");
    tensor<T, 2> id;
    f.identity(1, id);
    std::copy(id.begin(), id.end(), theta.data());
    const std::size_t n = x.shape()[0], d = x.shape()[1];
    const auto wide = testing::uniform_batch<T>(n, d, 78, -0.3, 1.3);
    const auto dout = testing::uniform_batch<T>(n, d, 79, -1, 1);
    const any_family<T> held(f);
    family_tape tape, held_tape;
    for (const tensor<T, 2>* in : {&x, &wide}) {  // one tape for both batches
        tensor<T, 2> out, dtheta, dx;
        f.apply(*in, theta, out);
        vjp_both(f, *in, theta, dout, &dtheta, &dx);
        tensor<T, 2> r_out, r_dtheta, r_dx, r_theta_only, r_x_only;
        apply_recorded(f, *in, theta, r_out, tape);
        vjp_recorded(f, *in, theta, dout, &r_dtheta, &r_dx, tape);
        vjp_recorded(f, *in, theta, dout, &r_theta_only, static_cast<tensor<T, 2>*>(nullptr), tape);
        vjp_recorded(f, *in, theta, dout, static_cast<tensor<T, 2>*>(nullptr), &r_x_only, tape);
        CHECK(same_bits(out, r_out));
        CHECK(same_bits(dtheta, r_dtheta));
        CHECK(same_bits(dx, r_dx));
        CHECK(same_bits(dtheta, r_theta_only));
        CHECK(same_bits(dx, r_x_only));
        tensor<T, 2> h_out, h_dtheta, h_dx;
        apply_recorded(held, *in, theta, h_out, held_tape);
        vjp_recorded(held, *in, theta, dout, &h_dtheta, &h_dx, held_tape);
        CHECK(same_bits(out, h_out));
        CHECK(same_bits(dtheta, h_dtheta));
        CHECK(same_bits(dx, h_dx));
    }
}

template <class F>
void check_gradients(const F& f, const tensor<typename F::value_type, 2>& x,
                     const tensor<typename F::value_type, 2>& theta, const char* what) {
    using T = typename F::value_type;
    const auto r = check_perturbation_gradients(f, x, theta, fd_options<T>());
    INFO(std::string(what) << ": theta relative error " << r.theta.relative_error << " (norms "
              << r.theta.analytic_norm << ", " << r.theta.numeric_norm << "), input relative error "
              << r.input.relative_error << " (norms " << r.input.analytic_norm << ", "
              << r.input.numeric_norm << ")");
    CHECK(r.passed(fd_tolerance<T>()));
    if (r.theta_checked) CHECK(r.theta.analytic_norm > 0);  // the check compared something
    CHECK(r.recorded_checked == detail::perturbation_contract::has_recorded_apply<F>);
    // vjp_both (the optional vjp(), both products in one pass where declared) gives the two
    // members' values bit for bit
    const auto dout = testing::uniform_batch<T>(x.shape()[0], x.shape()[1], 77, -1, 1);
    tensor<T, 2> dtheta, dx, both_theta, both_x;
    f.vjp_theta(x, theta, dout, dtheta);
    f.vjp_input(x, theta, dout, dx);
    vjp_both(f, x, theta, dout, &both_theta, &both_x);
    REQUIRE(both_theta.shape() == dtheta.shape());
    REQUIRE(both_x.shape() == dx.shape());
    CHECK(std::memcmp(both_theta.data(), dtheta.data(), dtheta.size() * sizeof(T)) == 0);
    CHECK(std::memcmp(both_x.data(), dx.data(), dx.size() * sizeof(T)) == 0);
    check_recorded(f, x, theta, what);
}

template <class F>
void check_identity(const F& f, const tensor<typename F::value_type, 2>& x, const char* what) {
    tensor<typename F::value_type, 2> theta, out;
    f.identity(x.shape()[0], theta);
    f.apply(x, theta, out);
    INFO(std::string(what));
    REQUIRE(out.shape() == x.shape());
    CHECK(std::memcmp(out.data(), x.data(), x.size() * sizeof(typename F::value_type)) == 0);
}

template <class F>
void check_budget(const F& f, std::size_t n, const char* what) {
    using T = typename F::value_type;
    INFO(std::string(what));
    auto theta = interior_theta(f, n, 11);
    CHECK(f.contains(theta));
    // Far outside, then projected back.
    for (std::size_t i = 0; i < theta.size(); ++i) {
        theta.data()[i] = static_cast<T>(i % 3 == 0 ? 50.0 : i % 3 == 1 ? -50.0 : 0.7);
    }
    CHECK_FALSE(f.contains(theta));
    f.project(theta);
    CHECK(f.contains(theta));
}

}  // namespace

static_assert(perturbation_family<photometric<float>>);
static_assert(perturbation_family<affine<double>>);
static_assert(perturbation_family<displacement_field<double>>);
static_assert(perturbation_family<gaussian_blur<double>>);
static_assert(perturbation_family<linf_ball<double>>);
static_assert(perturbation_family<l2_ball<double>>);
static_assert(perturbation_family<chain<photometric<double>, affine<double>>>);
static_assert(perturbation_family<tabular_drift<double>>);
static_assert(perturbation_family<common_drift<double>>);
static_assert(perturbation_family<quantize<double>>);
static_assert(perturbation_family<common_quantize<double>>);
static_assert(kind_of<common_quantize<double>>() == perturbation_kind::gradient_free);
static_assert(perturbation_family<dropped_sensors<double>>);
static_assert(detail::perturbation_contract::has_vjp<affine<float>>);  // the optional members
static_assert(detail::perturbation_contract::has_recorded_apply<photometric<double>> &&
              detail::perturbation_contract::has_recorded_vjp<photometric<double>>);
static_assert(detail::perturbation_contract::has_recorded_vjp<any_family<float>>);
// Recorded where the forward pass is worth keeping (a workspace), not the cheap ones.
static_assert(detail::perturbation_contract::has_recorded_apply<gaussian_blur<float>>);
static_assert(!detail::perturbation_contract::has_recorded_apply<linf_ball<float>> &&
              !detail::perturbation_contract::has_recorded_vjp<linf_ball<float>>);
static_assert(!detail::perturbation_contract::has_recorded_vjp<tabular_drift<double>>);
static_assert(!detail::perturbation_contract::has_recorded_vjp<chain<affine<float>, linf_ball<float>>>);
static_assert(detail::perturbation_contract::has_vjp<any_family<float>>);
static_assert(detail::perturbation_contract::has_vjp<chain<affine<float>, linf_ball<float>>>);
static_assert(kind_of<quantize<double>>() == perturbation_kind::gradient_free);
static_assert(kind_of<dropped_sensors<double>>() == perturbation_kind::discrete);
static_assert(kind_of<chain<affine<double>, quantize<double>>>() ==
              perturbation_kind::gradient_free);

TEST_CASE_TEMPLATE("image families: derivatives in theta and x match finite differences", T, float,
                   double) {
    const auto x = testing::uniform_batch<T>(3, small_image.size(), 1, 0.2, 0.8);
    const photometric<T> photo(
        small_image,
        {.brightness = symmetric(0.05), .contrast = symmetric(0.1), .log_gamma = symmetric(0.2)});
    const affine<T> warp(small_image, {.rotation = symmetric(20),
                                       .scale_x = symmetric(0.1),
                                       .scale_y = symmetric(0.1),
                                       .shear = symmetric(0.1),
                                       .translate_x = symmetric(1.5),
                                       .translate_y = symmetric(1.5)});
    const affine<T> warp_border(
        small_image,
        {.rotation = symmetric(20), .translate_x = symmetric(1.5), .translate_y = symmetric(1.5)},
        padding::border);
    const displacement_field<T> flow(small_image, {.grid = 3, .max_displacement = 1.5});
    const gaussian_blur<T> blur(small_image, {0.5, 1.5});
    const linf_ball<T> linf(small_image, 0.05);
    const l2_ball<T> l2(small_image, 0.3);
    // Border padding keeps the warped pixels off 0, so the ball's clip has no kink in reach.
    const chain<photometric<T>, affine<T>, linf_ball<T>> all(photo, warp_border, linf);

    check_gradients(photo, x, interior_theta(photo, 3, 1), "photometric");
    check_gradients(warp, x, interior_theta(warp, 3, 2), "affine, zero padding");
    check_gradients(warp_border, x, interior_theta(warp_border, 3, 3), "affine, border padding");
    check_gradients(flow, x, interior_theta(flow, 3, 4), "displacement_field");
    check_gradients(blur, x, interior_theta(blur, 3, 5), "gaussian_blur");
    check_gradients(linf, x, interior_theta(linf, 3, 6), "linf_ball");
    check_gradients(l2, x, interior_theta(l2, 3, 7), "l2_ball");
    check_gradients(all, x, interior_theta(all, 3, 8), "chain");
}

TEST_CASE_TEMPLATE("tabular families: derivatives match finite differences, also normalized", T,
                   float, double) {
    // Five sensors in their own raw units; the model sees standardized values.
    const auto domain = input_domain{}
                            .bounds({-1, 0, 0, -5, 10}, {1, 10, 1, 5, 20})
                            .normalization({0, 5, 0.5, 0, 15}, {0.5, 3, 0.2, 2, 4});
    auto raw = testing::uniform_batch<T>(4, 5, 2, 0.3, 0.7);
    const std::vector<double> lo{-1, 0, 0, -5, 10}, hi{1, 10, 1, 5, 20};
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t f = 0; f < 5; ++f)
            raw(i, f) = static_cast<T>(lo[f] + (hi[f] - lo[f]) * raw(i, f));
    const auto x = domain.normalize(raw);

    const tabular_drift<T> drift(5, {.gain = {symmetric(0.05)}, .offset = {symmetric(0.1)}},
                                 domain);
    const common_drift<T> shared(5, {.gain = symmetric(0.05), .offset = symmetric(0.3)},
                                 {0.5, 3, 0.2, 2, 4}, domain);
    const quantize<T> coarse(5, {{0.01, 0.05}}, domain);
    const dropped_sensors<T> dropped(5, 2, {0.0, 5.0, 0.5, 0.0, 15.0}, domain);

    check_gradients(drift, x, interior_theta(drift, 4, 1), "tabular_drift");
    check_gradients(shared, x, interior_theta(shared, 4, 4), "common_drift");
    check_gradients(dropped, x, interior_theta(dropped, 4, 2), "dropped_sensors (relaxed)");
    // Piecewise constant in x: a small step keeps the differences off the rounding edges.
    const auto tiny = gradient_check_options().step(1e-6);
    const auto r = check_perturbation_gradients(coarse, x, interior_theta(coarse, 4, 3), tiny);
    CHECK_FALSE(r.theta_checked);  // gradient-free: nothing to compare in theta
    CHECK(r.passed(fd_tolerance<T>()));
    const common_quantize<T> coarse_shared(5, {0.01, 0.05}, {1.0, 2.0, 0.5, 1.0, 3.0}, domain);
    const auto rs = check_perturbation_gradients(coarse_shared, x, interior_theta(coarse_shared, 4, 5), tiny);
    CHECK_FALSE(rs.theta_checked);
    CHECK(rs.passed(fd_tolerance<T>()));
}

TEST_CASE_TEMPLATE("the identity theta returns x bit for bit", T, float, double) {
    const auto x = testing::uniform_batch<T>(3, small_image.size(), 4);
    const photometric<T> photo(small_image, {.brightness = symmetric(0.1)});
    const affine<T> warp(small_image, {.rotation = symmetric(10)});
    const displacement_field<T> flow(small_image, {});
    const gaussian_blur<T> blur(small_image, {0, 1});
    const linf_ball<T> linf(small_image, 0.1);
    const l2_ball<T> l2(small_image, 0.1);
    check_identity(photo, x, "photometric");
    check_identity(warp, x, "affine");
    check_identity(flow, x, "displacement_field");
    check_identity(blur, x, "gaussian_blur");
    check_identity(linf, x, "linf_ball");
    check_identity(l2, x, "l2_ball");
    check_identity(chain(photo, warp, blur), x, "chain");

    const auto domain = input_domain{}.bounds(-3, 3).normalization(0.1, 0.7);
    const auto t = testing::uniform_batch<T>(3, 4, 5, -1, 1);  // normalized: no round trip
    check_identity(tabular_drift<T>(4, {.gain = {symmetric(0.1)}}, domain), t, "tabular_drift");
    check_identity(common_drift<T>(4, {.offset = symmetric(1)}, {0.7}, domain), t, "common_drift");
    check_identity(quantize<T>(4, {{0, 0.5}}, domain), t, "quantize");
    check_identity(common_quantize<T>(4, {0, 0.5}, {0.7}, domain), t, "common_quantize");
    check_identity(dropped_sensors<T>(4, 1, {0.0}, domain), t, "dropped_sensors");
}

/// A user's family x + theta (one offset per sample) whose recorded vjp doubles dtheta when
/// `wrong`: check_perturbation_gradients must catch the difference from the plain members.
struct offset_family {
    using value_type = double;
    using batch = tensor<double, 2>;
    bool wrong = false;
    std::size_t input_size() const { return 4; }
    std::size_t num_params() const { return 1; }
    void apply(const batch& x, const batch& theta, batch& out) const {
        out = x;
        for (std::size_t i = 0; i < x.shape()[0]; ++i) {
            for (std::size_t d = 0; d < 4; ++d) out(i, d) += theta(i, 0);
        }
    }
    void vjp_theta(const batch& x, const batch&, const batch& dout, batch& dtheta) const {
        dtheta = batch::from_shape({x.shape()[0], 1});
        for (std::size_t i = 0; i < x.shape()[0]; ++i) {
            dtheta(i, 0) = dout(i, 0) + dout(i, 1) + dout(i, 2) + dout(i, 3);
        }
    }
    void vjp_input(const batch&, const batch&, const batch& dout, batch& dx) const { dx = dout; }
    void apply(const batch& x, const batch& theta, batch& out, family_tape&) const {
        apply(x, theta, out);
    }
    void vjp(const batch& x, const batch& theta, const batch& dout, batch* dtheta, batch* dx,
             family_tape&) const {
        if (dtheta) {
            vjp_theta(x, theta, dout, *dtheta);
            if (wrong) *dtheta *= 2.0;
        }
        if (dx) vjp_input(x, theta, dout, *dx);
    }
    void identity(std::size_t n, batch& theta) const {
        theta = batch::from_shape({n, 1});
        theta.fill(0.0);
    }
    void sample(std::size_t n, std::uint64_t, batch& theta) const { identity(n, theta); }
    void project(batch&) const {}
    bool contains(const batch&) const { return true; }
    std::vector<double> param_scale() const { return {1.0}; }
};

TEST_CASE("check_perturbation_gradients compares a user's recorded pass with the plain members") {
    const auto x = testing::uniform_batch<double>(3, 4, 6);
    const auto theta = testing::uniform_batch<double>(3, 1, 7, -0.1, 0.1);
    offset_family good;
    const auto ok = check_perturbation_gradients(good, x, theta);
    CHECK(ok.recorded_checked);
    CHECK(ok.recorded_same);
    CHECK(ok.passed(1e-6));
    offset_family bad;
    bad.wrong = true;
    const auto caught = check_perturbation_gradients(bad, x, theta);
    CHECK(caught.recorded_checked);
    CHECK_FALSE(caught.recorded_same);
    CHECK(caught.theta.passed(1e-6));  // the plain members are right; the recorded pass is not
    CHECK_FALSE(caught.passed(1e-6));
}

TEST_CASE("the recorded pass refuses a tape without the record of this family, x and theta") {
    const auto x = testing::uniform_batch<double>(3, small_image.size(), 4);
    const auto dout = testing::uniform_batch<double>(3, small_image.size(), 5, -1, 1);
    const photometric<double> photo(small_image, {.brightness = symmetric(0.1)});
    const photometric<double> other(small_image, {.brightness = symmetric(0.1)});
    tensor<double, 2> theta, out, dtheta;
    photo.sample(3, 1, theta);
    family_tape tape;
    const auto refused = [&](const photometric<double>& f, const tensor<double, 2>& at_x,
                             const tensor<double, 2>& at_theta) {
        testing::check_throws<std::invalid_argument>(
            [&] { f.vjp(at_x, at_theta, dout, &dtheta, nullptr, tape); },
            {"photometric::vjp", "the tape holds no record of this family at this x and theta"});
    };
    refused(photo, x, theta);  // nothing recorded yet
    photo.apply(x, theta, out, tape);
    refused(other, x, theta);  // another family's
    const tensor<double, 2> x_copy = x;
    refused(photo, x_copy, theta);  // the same values in another tensor
    auto moved = theta;
    refused(photo, x, moved);
    theta(1, 0) += 0.01;  // changed in place since apply
    refused(photo, x, theta);
    theta(1, 0) -= 0.01;
    photo.vjp(x, theta, dout, &dtheta, nullptr, tape);  // and accepted as recorded
    CHECK(dtheta.shape()[0] == 3);
}

TEST_CASE("a non-identity theta changes the batch") {
    // Guards the identity test above against families that ignore theta.
    const auto x = testing::uniform_batch<double>(2, small_image.size(), 4);
    const affine<double> warp(small_image, {.rotation = symmetric(10)});
    tensor<double, 2> theta = xt::zeros<double>({2, 6}), out;
    theta(0, 0) = 7;
    warp.apply(x, theta, out);
    CHECK(testing::max_abs_diff(out, x) > 0.01);
    // Row 1 kept the identity: it is untouched.
    for (std::size_t d = 0; d < x.shape()[1]; ++d) CHECK(out(1, d) == x(1, d));
}

TEST_CASE("every family's samples lie in its budget, and projection brings theta back") {
    check_budget(photometric<double>(small_image, {.brightness = {-0.1, 0.2},
                                                   .contrast = symmetric(0.3),
                                                   .log_gamma = symmetric(0.3)}),
                 4, "photometric");
    check_budget(
        affine<double>(small_image, {.rotation = symmetric(15), .translate_x = symmetric(2)}), 4,
        "affine");
    check_budget(displacement_field<double>(small_image, {.grid = 3, .max_displacement = 0.8}), 4,
                 "displacement_field");
    check_budget(gaussian_blur<double>(small_image, {0.2, 1.0}), 4, "gaussian_blur");
    check_budget(linf_ball<double>(small_image, 0.05), 4, "linf_ball");
    check_budget(l2_ball<double>(small_image, 0.5), 4, "l2_ball");
    check_budget(tabular_drift<double>(3, {.gain = {symmetric(0.1)}, .offset = {{-1, 2}}}), 4,
                 "tabular_drift");
    check_budget(common_drift<double>(3, {.gain = symmetric(0.1), .offset = {-1, 2}}), 4,
                 "common_drift");
    check_budget(quantize<double>(3, {{0.1, 0.2}}), 4, "quantize");
    check_budget(common_quantize<double>(3, {0.1, 0.2}), 4, "common_quantize");
    check_budget(dropped_sensors<double>(6, 2), 4, "dropped_sensors");
    check_budget(chain(affine<double>(small_image, {.shear = symmetric(0.2)}),
                       l2_ball<double>(small_image, 0.5)),
                 4, "chain");

    // A mask projects to its nearest point: the k largest entries above 1/2.
    const dropped_sensors<double> dropped(5, 2);
    tensor<double, 2> m = {{0.9, 0.2, 0.7, 0.8, 0.1}, {0.4, 0.3, 0.2, 0.1, 0.0}};
    dropped.project(m);
    CHECK(m == tensor<double, 2>{{1, 0, 0, 1, 0}, {0, 0, 0, 0, 0}});
    tensor<double, 2> sample;
    dropped.sample(50, 3, sample);
    CHECK(xt::all(xt::equal(xt::sum(sample, {1}), 2.0)));  // exactly k per row
}

TEST_CASE_TEMPLATE("tabular outputs keep the input domain's bounds", T, float, double) {
    const std::vector<double> lo{-1, 0, 0, -5}, hi{1, 10, 1, 5};
    const auto domain =
        input_domain{}.bounds(lo, hi).normalization({0, 5, 0.5, 0}, {0.5, 3, 0.2, 2});
    // Raw values at and near the bounds, where drift and coarse steps push outside.
    tensor<T, 2> raw = {
        {-1, 0, 0, -5}, {1, 10, 1, 5}, {0.98, 9.9, 0.97, 4.9}, {-0.9, 0.2, 0.05, -4.6}};
    const auto x = domain.normalize(raw);
    const tabular_drift<T> drift(4, {.gain = {symmetric(0.3)}, .offset = {symmetric(2.0)}}, domain);
    const common_drift<T> shared(4, {.gain = symmetric(0.3), .offset = symmetric(2.0)},
                                 {0.5, 3, 0.2, 2}, domain);
    const quantize<T> coarse(4, {{1.5, 3.0}}, domain);
    const common_quantize<T> coarse_shared(4, {0.5, 1.5}, {0.5, 3, 0.2, 2}, domain);
    const dropped_sensors<T> dropped(4, 3, {-9.0, 20.0, 0.5, 0.0}, domain);  // fill outside too

    auto check_inside = [&](const auto& family, const char* what) {
        for (std::uint64_t key = 0; key < 20; ++key) {
            tensor<T, 2> theta, out;
            family.sample(4, key, theta);
            if (key == 0) {  // the budget's corner
                for (std::size_t i = 0; i < theta.size(); ++i) theta.data()[i] = T(1e3);
                family.project(theta);
            }
            family.apply(x, theta, out);
            const auto back = domain.denormalize(out);
            for (std::size_t i = 0; i < 4; ++i) {
                for (std::size_t f = 0; f < 4; ++f) {
                    INFO(std::string(what) << " key " << key << " row " << i << " feature " << f << " = "
                              << back(i, f));
                    const double tol = 1e-5 * (1 + std::abs(hi[f]));
                    CHECK(static_cast<double>(back(i, f)) >= lo[f] - tol);
                    CHECK(static_cast<double>(back(i, f)) <= hi[f] + tol);
                }
            }
        }
    };
    check_inside(drift, "tabular_drift");
    check_inside(shared, "common_drift");
    check_inside(coarse, "quantize");
    check_inside(coarse_shared, "common_quantize");
    check_inside(dropped, "dropped_sensors");
}

TEST_CASE("bad input gets one clear error") {
    using testing::check_throws;
    check_throws<std::invalid_argument>(
        [] {
            photometric<double>(small_image, {.brightness = {0.2, -0.2}});
        },
        {"photometric()", "brightness", "lo <= hi", "0.2", "-0.2"});
    check_throws<std::invalid_argument>(
        [] {
            tabular_drift<double>(3, {.offset = {{0, 1}, {2, 1}, {0, 1}}});
        },
        {"tabular_drift()", "offset[1]", "lo <= hi"});
    check_throws<std::invalid_argument>(
        [] { common_drift<double>(3, {.gain = {0.1, -0.1}}); },
        {"common_drift()", "gain", "lo <= hi"});
    check_throws<std::invalid_argument>(
        [] { common_drift<double>(3, {}, {1.0, 0.0, 2.0}); },
        {"common_drift()", "scale must be finite and > 0", "got 0"});
    check_throws<std::invalid_argument>(
        [] { common_drift<double>(3, {}, {1.0, 2.0}); },
        {"common_drift()", "scale has 2 entries; need 1 or 3"});
    check_throws<std::invalid_argument>([] { common_quantize<double>(3, {-0.1, 1}); },
                                        {"common_quantize()", "step.lo must be >= 0", "-0.1"});
    check_throws<std::invalid_argument>(
        [] { common_quantize<double>(3, {0, 1}, {1.0, -2.0, 1.0}); },
        {"common_quantize()", "scale must be finite and > 0", "got -2"});
    check_throws<std::invalid_argument>([] { image_shape_for("affine", 785, 28, 28); },
                                        {"affine()", "785", "28 x 28", "784"});
    // The framed plane's indices are 32-bit: refused before any row is allocated.
    check_throws<std::invalid_argument>(
        [] { affine<float>({1, 50000, 50000}, {}); },
        {"affine()", "50000 x 50000", "too large to sample"});
    check_throws<std::invalid_argument>(
        [] { displacement_field<float>({1, 3, 1u << 30}, {}); },
        {"displacement_field()", "too large to sample"});
    check_throws<std::invalid_argument>(
        [] {
            const affine<double> warp({1, 28, 28}, {});
            tensor<double, 2> x = xt::zeros<double>({2, 785}), theta = xt::zeros<double>({2, 6}),
                              out;
            warp.apply(x, theta, out);
        },
        {"affine::apply()", "[2, 785]", "784 features"});
    check_throws<std::invalid_argument>(
        [] {
            const photometric<double> photo(small_image, {});
            const auto x = testing::uniform_batch<double>(2, 60, 1);
            tensor<double, 2> theta = xt::zeros<double>({2, 3}), out;
            theta(1, 2) = std::numeric_limits<double>::quiet_NaN();
            photo.apply(x, theta, out);
        },
        {"photometric::apply()", "theta must be finite", "nan", "row 1", "parameter 2"});
    check_throws<std::invalid_argument>(
        [] {
            const gaussian_blur<double> blur(small_image, {0, 1});
            auto x = testing::uniform_batch<double>(2, 60, 1);
            x(0, 7) = std::numeric_limits<double>::infinity();
            tensor<double, 2> theta = xt::zeros<double>({2, 1}), dx;
            blur.vjp_input(x, theta, x, dx);
        },
        {"gaussian_blur::vjp_input()", "x must be finite", "inf", "row 0", "feature 7"});
    check_throws<std::invalid_argument>(
        [] {
            const linf_ball<double> ball(4, 0.1);
            tensor<double, 2> x = xt::zeros<double>({3, 4}), theta = xt::zeros<double>({2, 4}), out;
            ball.apply(x, theta, out);
        },
        {"linf_ball::apply()", "theta has shape [2, 4]", "expected [3, 4]"});
    check_throws<std::invalid_argument>([] { linf_ball<double>(4, -0.1); },
                                        {"linf_ball()", "epsilon", "-0.1"});
    check_throws<std::invalid_argument>(
        [] {
            gaussian_blur<double>(small_image, {-1, 1});
        },
        {"gaussian_blur()", "sigma.lo", "-1"});
    check_throws<std::invalid_argument>([] { dropped_sensors<double>(4, 5); },
                                        {"dropped_sensors()", "k must be in [1, 4]", "5"});
    check_throws<std::invalid_argument>(
        [] {
            quantize<double>(3, {{0, 1}, {0, 1}});
        },
        {"quantize()", "step has 2 entries", "need 1 or 3"});
    check_throws<std::invalid_argument>(
        [] { photometric<double>(small_image, {}, input_domain::unbounded()); },
        {"photometric()", "bounded input domain", "inf"});
    check_throws<std::invalid_argument>(
        [] { displacement_field<double>(small_image, {.grid = 1}); },
        {"displacement_field()", "grid must be >= 2", "1"});
    check_throws<std::invalid_argument>(
        [] { displacement_field<double>(small_image, {.max_displacement = -0.5}); },
        {"displacement_field()", "max_displacement must be finite and >= 0", "-0.5"});
    check_throws<std::invalid_argument>(
        [] { chain(linf_ball<double>(4, 0.1), linf_ball<double>(5, 0.1)); },
        {"chain()", "member 1 takes 5 features", "member 0 takes 4"});
}

TEST_CASE("perturb() applies a family to a [N, C, H, W] batch as to its channel-major rows") {
    const auto rows = testing::uniform_batch<double>(2, small_image.size(), 8);
    auto images = tensor<double, 4>::from_shape({2, 2, 5, 6});
    std::copy(rows.begin(), rows.end(), images.begin());
    const affine<double> warp(small_image, {.rotation = symmetric(10)});
    tensor<double, 2> theta = {{4, 0, 0, 0, 0, 0}, {-6, 0, 0, 0, 0, 0}}, expected;
    warp.apply(rows, theta, expected);
    const auto out = perturb(warp, images, theta);
    REQUIRE(out.shape() == images.shape());
    CHECK(std::equal(out.begin(), out.end(), expected.begin()));
    CHECK(testing::max_abs_diff(expected, rows) > 0.01);
}

TEST_CASE("common_drift shifts every feature by one gain and one offset in its own scale") {
    // Raw units: one offset unit is 2 on feature 0 and 10 on feature 1.
    const common_drift<double> shared(2, {.gain = symmetric(0.5), .offset = symmetric(1)},
                                      {2.0, 10.0}, input_domain::unbounded());
    const tensor<double, 2> x = {{1, 4}, {-3, 0}};
    const tensor<double, 2> theta = {{0.5, 0}, {0, -1}};
    tensor<double, 2> out;
    shared.apply(x, theta, out);
    CHECK(out == tensor<double, 2>{{1.5, 6}, {-5, -10}});
}

TEST_CASE("common_quantize rounds every feature to one step in its own scale") {
    const common_quantize<double> shared(2, {0, 1}, {2.0, 10.0}, input_domain::unbounded());
    // Steps 1 and 5, then 2 and 10; halves go away from zero; a zero step is the identity.
    const tensor<double, 2> x = {{1.2, 14}, {-3.1, 26}, {2.5, -12.5}, {0.7, -3.3}};
    const tensor<double, 2> theta = {{0.5}, {1}, {0.5}, {0}};
    tensor<double, 2> out;
    shared.apply(x, theta, out);
    CHECK(out == tensor<double, 2>{{1, 15}, {-4, 30}, {3, -15}, {0.7, -3.3}});
}

TEST_CASE_TEMPLATE("quantize's rounding is std::round bit for bit, and select_bits the conditional",
                   T, float, double) {
    // Halves (away from zero), their neighbours, signed zeros, the integral threshold 2^23 or
    // 2^52 and beyond, and infinities; then a sweep of quotients as quantize forms them.
    const T integral = T(1) / std::numeric_limits<T>::epsilon();
    std::vector<T> q = {T(0),      -T(0),     T(0.5),   -T(0.5),  T(1.5),         -T(1.5),
                        T(2.5),    -T(2.5),   T(0.3),   -T(0.3),  integral - T(0.5), integral,
                        -integral, 3 * integral, std::numeric_limits<T>::max(),
                        std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
    for (T v : {T(0.5), T(1.5), T(7.5), integral / 2 + T(0.5)}) {
        q.push_back(std::nextafter(v, T(0)));
        q.push_back(std::nextafter(v, T(10) * v));
        q.push_back(-std::nextafter(v, T(0)));
    }
    rng gen(3);
    for (int i = 0; i < 20000; ++i) {
        q.push_back(static_cast<T>(gen.uniform(-1, 1)) / static_cast<T>(gen.uniform(1e-4, 0.2)));
    }
    std::size_t mismatches = 0;
    for (T v : q) {
        const T got = detail::round_half_away(v), want = std::round(v);
        mismatches += std::memcmp(&got, &want, sizeof(T)) != 0;
    }
    CHECK(mismatches == 0);
    CHECK(std::isnan(detail::round_half_away(std::numeric_limits<T>::quiet_NaN())));
    CHECK(detail::select_bits(true, T(1), T(2)) == T(1));
    CHECK(detail::select_bits(false, T(1), T(2)) == T(2));
    CHECK(std::signbit(detail::select_bits(true, -T(0), T(0))));
}

}  // namespace test_perturbations_families
