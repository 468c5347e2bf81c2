// backend/element_math.hpp: the element arithmetic that host loops and device kernels share.
//
// There is one copy of each formula, so these tests check the host loops built on it against
// the formulae written out plainly (the reference), and the element functions' own edge cases
// (ties, NaN, zero gradients). tests/cuda/ runs the device kernels, which call the same
// functions, against the host.
#include <doctest/doctest.h>

#include <advaug/backend/element_math.hpp>
#include <advaug/backend/host.hpp>
#include <advaug/detail/random.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_element_math {

using namespace advaug;
namespace el = advaug::backend::element;

namespace {

template <class T>
tensor<T, 2> uniform(std::size_t rows, std::size_t cols, std::uint64_t seed, double lo, double hi) {
    auto x = tensor<T, 2>::from_shape({rows, cols});
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(lo, hi));
    return x;
}

/// A gradient with exact zeros, tiny values and both signs, like a real one.
template <class T>
tensor<T, 2> gradient(std::size_t rows, std::size_t cols, std::uint64_t seed) {
    auto g = uniform<T>(rows, cols, seed, -1.0, 1.0);
    for (std::size_t i = 0; i < g.size(); i += 7) g.data()[i] = T(0);
    for (std::size_t i = 3; i < g.size(); i += 11) g.data()[i] = T(1e-30);
    return g;
}

std::vector<input_domain> domains() {
    return {input_domain{}, input_domain{}.normalization(0.3, 0.2),
            input_domain{}
                .bounds({0.0, -1.0, 0.0, 0.2, 0.0, 0.0}, {1.0, 1.0, 2.0, 0.8, 1.0, 1.0})
                .normalization({0.5, 0.0, 1.0, 0.5, 0.1, 0.0}, {0.25, 0.5, 2.0, 0.1, 1.0, 0.3})};
}

/// x0 and a point inside the ball around it, as in the middle of PGD.
template <class T>
std::pair<tensor<T, 2>, tensor<T, 2>> start_and_iterate(const input_domain& domain,
                                                        std::uint64_t seed, double spread) {
    auto x0 = domain.normalize(uniform<T>(9, 6, seed, 0.2, 0.8));
    const tensor<T, 2> zero = xt::zeros<T>({9, 6});
    tensor<T, 2> x =
        x0 + domain.normalize(uniform<T>(9, 6, seed + 1, -spread, spread)) - domain.normalize(zero);
    return {std::move(x0), std::move(x)};
}

}  // namespace

TEST_CASE("clamp and sign follow std::clamp and the sign function, NaN included") {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(el::clamp(2.0, 0.0, 1.0) == 1.0);
    CHECK(el::clamp(-2.0, 0.0, 1.0) == 0.0);
    CHECK(el::clamp(0.25, 0.0, 1.0) == 0.25);
    CHECK(std::isnan(el::clamp(nan, 0.0, 1.0)));
    CHECK(el::sign(0.0) == 0.0);
    CHECK(el::sign(-0.0) == 0.0);
    CHECK(el::sign(-3.0f) == -1.0f);
    CHECK(el::sign(1e-30) == 1.0);
}

TEST_CASE_TEMPLATE("the host L-inf step is clip_domain(clip_ball(x + step * sign(g))), bit for bit",
                   T, float, double) {
    for (const auto& domain : domains()) {
        const auto [x0, x] = start_and_iterate<T>(domain, 1, 0.01);
        const auto dom = detail::resolve<T>("test", domain, x0.shape());
        const auto g = gradient<T>(9, 6, 3);
        for (T dir : {T(1), T(-1)}) {
            for (T step : {T(0.003), T(0.05), T(0)}) {
                tensor<T, 2> host = x;
                detail::linf_step("test", host, x0, g, dom, step, T(0.02), dir);
                for (std::size_t i = 0; i < x.size(); ++i) {
                    const std::size_t d = i % 6;
                    const T scale = dom.model_per_raw[d], e = T(0.02) * scale;
                    const T gi = g.data()[i];
                    const T s = gi > 0 ? T(1) : (gi < 0 ? T(-1) : T(0));
                    T v = x.data()[i] + dir * step * scale * s;
                    v = std::clamp(v, x0.data()[i] - e, x0.data()[i] + e);
                    CHECK(host.data()[i] == std::clamp(v, dom.lo[d], dom.hi[d]));
                }
            }
        }
        // eps == 0 maps x0 to itself.
        tensor<T, 2> at = x0;
        detail::linf_step("test", at, x0, g, dom, T(0.1), T(0), T(1));
        CHECK(at == x0);
    }
}

TEST_CASE_TEMPLATE("the host L2 step is the raw-unit step projected onto the ball", T, float,
                   double) {
    for (const auto& domain : domains()) {
        const auto [x0, x] = start_and_iterate<T>(domain, 4, 0.02);
        const auto dom = detail::resolve<T>("test", domain, x0.shape());
        auto g = gradient<T>(9, 6, 6);
        for (std::size_t d = 0; d < 6; ++d) g(2, d) = T(0);  // a sample with a zero gradient
        for (T dir : {T(1), T(-1)}) {
            for (T eps : {T(0.01), T(0.5)}) {
                tensor<T, 2> host = x;
                detail::l2_step("test", host, x0, g, dom, T(0.1), eps, dir);
                for (std::size_t s = 0; s < 9; ++s) {
                    // In raw units: delta' = delta + step * g_raw / ||g_raw||, then scaled into
                    // the ball of radius eps; back to model units, clipped to the domain.
                    std::vector<double> graw(6), delta(6);
                    double gnorm2 = 0, dnorm2 = 0;
                    for (std::size_t d = 0; d < 6; ++d) {
                        graw[d] = static_cast<double>(g(s, d)) * dom.model_per_raw[d];
                        gnorm2 += graw[d] * graw[d];
                    }
                    const double gs =
                        gnorm2 > 0 ? static_cast<double>(dir * T(0.1)) / std::sqrt(gnorm2) : 0.0;
                    for (std::size_t d = 0; d < 6; ++d) {
                        delta[d] = static_cast<double>(x(s, d) - x0(s, d)) * dom.raw_per_model[d] +
                                   gs * graw[d];
                        dnorm2 += delta[d] * delta[d];
                    }
                    const double e = static_cast<double>(eps);
                    const double shrink = dnorm2 > e * e ? e / std::sqrt(dnorm2) : 1.0;
                    for (std::size_t d = 0; d < 6; ++d) {
                        const T v =
                            x0(s, d) + static_cast<T>(shrink * delta[d] * dom.model_per_raw[d]);
                        CHECK(host(s, d) == std::clamp(v, dom.lo[d], dom.hi[d]));
                    }
                }
            }
        }
    }
}

TEST_CASE_TEMPLATE("the L-inf random start is x0 + counter_uniform(key, i, -eps, eps), bit for bit",
                   T, float, double) {
    // The device kernel computes element i as el::linf_start(x0, counter_uniform(key, i, 0, 1),
    // ...), which the host loop calls too; this is the formula it must reproduce.
    const auto domain = input_domain{}.normalization(0.4, 0.3);
    const auto x0 = domain.normalize(uniform<T>(5, 6, 7, 0.0, 1.0));
    const auto dom = detail::resolve<T>("test", domain, x0.shape());
    const double eps = 0.2;
    tensor<T, 2> host(x0.shape());
    rng gen(11), same(11);
    detail::random_start(host, x0, dom, norm::linf, eps, gen);
    const std::uint64_t key = same.engine()();
    for (std::size_t i = 0; i < host.size(); ++i) {
        const std::size_t d = i % 6;
        const double delta = detail::counter_uniform(key, i, -eps, eps);
        const T v = x0.data()[i] + static_cast<T>(delta * dom.model_per_raw[d]);
        CHECK(host.data()[i] == std::clamp(v, dom.lo[d], dom.hi[d]));
    }
}

TEST_CASE_TEMPLATE("the L2 random start is a Gaussian direction of radius eps * U^(1/d)", T, float,
                   double) {
    const auto domain = input_domain{}.normalization(0.4, 0.3);
    const auto x0 = domain.normalize(uniform<T>(5, 6, 7, 0.0, 1.0));
    const auto dom = detail::resolve<T>("test", domain, x0.shape());
    const double eps = 0.2;
    tensor<T, 2> host(x0.shape());
    rng gen(12), same(12);
    detail::random_start(host, x0, dom, norm::l2, eps, gen);
    for (std::size_t s = 0; s < 5; ++s) {
        std::vector<double> gauss(6);
        double norm2 = 0;
        for (auto& v : gauss) {
            // The host sums the squares in double but keeps the Gaussians in T.
            const double g = same.normal();
            norm2 += g * g;
            v = static_cast<double>(static_cast<T>(g));
        }
        const double radius = eps * std::pow(same.uniform(), 1.0 / 6.0);
        const double scale = radius / std::sqrt(norm2);
        for (std::size_t d = 0; d < 6; ++d) {
            const double delta = scale * gauss[d];
            const T v = x0(s, d) + static_cast<T>(delta * dom.model_per_raw[d]);
            CHECK(host(s, d) == std::clamp(v, dom.lo[d], dom.hi[d]));
        }
    }
}

TEST_CASE("the SGD element is torch.optim.SGD's update in each configuration") {
    const double w = 0.5, grad = -0.25, buf = 0.125, wd = 0.01, mu = 0.9, neg_lr = -0.1;
    // plain
    auto r = el::sgd(w, grad, buf, wd, mu, neg_lr, false, false, false, false);
    CHECK(r.weight == w + neg_lr * grad);
    // weight decay
    r = el::sgd(w, grad, buf, wd, mu, neg_lr, true, false, false, false);
    CHECK(r.weight == w + neg_lr * (grad + wd * w));
    // momentum: the first step sets the buffer to g, later steps mu * buf + g
    r = el::sgd(w, grad, buf, wd, mu, neg_lr, false, true, false, true);
    CHECK(r.buffer == grad);
    CHECK(r.weight == w + neg_lr * grad);
    r = el::sgd(w, grad, buf, wd, mu, neg_lr, false, true, false, false);
    CHECK(r.buffer == mu * buf + grad);
    CHECK(r.weight == w + neg_lr * (mu * buf + grad));
    // Nesterov: g + mu * buf'
    r = el::sgd(w, grad, buf, wd, mu, neg_lr, true, true, true, false);
    const double g = grad + wd * w, b = mu * buf + g;
    CHECK(r.buffer == b);
    CHECK(r.weight == w + neg_lr * (g + mu * b));
}

TEST_CASE("max_window returns the first maximum in row order") {
    // A 3 x 4 plane; the 2 x 2 window at (0, 1) and the 3 x 3 window at (0, 0).
    const std::vector<double> x = {1, 5, 2, 0,  //
                                   3, 5, 4, 9,  //
                                   7, 6, 8, 7};
    double max = 0;
    CHECK(el::max_window(x.data(), 1, 4, 2, max) == 1);  // 5 at (0, 1) before 5 at (1, 1)
    CHECK(max == 5);
    CHECK(el::max_window(x.data(), 0, 4, 3, max) == 10);
    CHECK(max == 8);
    CHECK(el::max_window(x.data(), 7, 4, 1, max) == 7);  // k = 1 is the element itself
    CHECK(max == 9);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    const std::vector<double> with_nan = {1, nan, 2, 0};
    CHECK(el::max_window(with_nan.data(), 0, 2, 2, max) == 2);  // NaN never wins a comparison
    CHECK(max == 2);
}

TEST_CASE_TEMPLATE("max_window equals the plain scan in row order on ties, zeros and NaNs", T, float,
                   double) {
    // The plain definition: scan the window in row order, a later element replaces the maximum
    // only when it compares greater. Values from a small set (many ties, as ReLU's zeros),
    // a NaN now and then, also in a window's first place.
    advaug::rng gen(12345);
    const T nan = std::numeric_limits<T>::quiet_NaN();
    const std::size_t w = 9, h = 9;
    std::vector<T> x(w * h);
    std::size_t windows = 0, nan_results = 0;
    for (int trial = 0; trial < 300; ++trial) {
        for (T& v : x) {
            const auto r = static_cast<unsigned>(gen.uniform() * 16);
            v = r == 0 ? nan : r < 8 ? T(0) : static_cast<T>(r % 4);
        }
        for (std::size_t k = 1; k <= 3; ++k) {
            for (std::size_t oy = 0; oy + k <= h; ++oy) {
                for (std::size_t ox = 0; ox + k <= w; ++ox) {
                    const std::size_t first = oy * w + ox;
                    std::size_t want = first;
                    for (std::size_t a = 0; a < k; ++a) {
                        for (std::size_t b = 0; b < k; ++b) {
                            const std::size_t i = first + a * w + b;
                            if (x[i] > x[want]) want = i;
                        }
                    }
                    T max = 0;
                    const std::size_t got = el::max_window(x.data(), first, w, k, max);
                    CHECK(got == want);
                    if (std::isnan(x[want])) {
                        CHECK(std::isnan(max));
                        ++nan_results;
                    } else {
                        CHECK(max == x[want]);
                    }
                    ++windows;
                }
            }
        }
    }
    CHECK(nan_results > 0);
    MESSAGE(windows, " windows checked");
}

TEST_CASE_TEMPLATE("inside_domain accepts a rounding tolerance and refuses NaN and inf", T, float,
                   double) {
    CHECK(el::inside_domain(T(0.5), T(0), T(1)));
    CHECK(el::inside_domain(T(1) + T(1e-6), T(0), T(1)));
    CHECK_FALSE(el::inside_domain(T(1.001), T(0), T(1)));
    CHECK_FALSE(el::inside_domain(T(-0.001), T(0), T(1)));
    CHECK_FALSE(el::inside_domain(std::numeric_limits<T>::quiet_NaN(), T(0), T(1)));
    CHECK_FALSE(el::inside_domain(std::numeric_limits<T>::infinity(), T(0), T(1)));
    const T inf = std::numeric_limits<T>::infinity();
    CHECK(el::inside_domain(T(1e30), -inf, inf));
}

}  // namespace test_element_math
