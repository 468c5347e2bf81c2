// Square Attack (Andriushchenko, Croce, Flammarion and Hein, "Square Attack: a query-efficient
// black-box adversarial attack via random search", ECCV 2020), under L-infinity or L2.
//
// Random search on the margin z_y - max_{j != y} z_j using forward passes only: no gradient,
// so it finds what gradient masking hides from APGD and PGD. Each query changes one square
// window of side s (the same window in every channel) and is kept if it lowers the margin;
// s shrinks with the p_init schedule (p = p_init, p_init / 2 after 10 queries, / 4 after 50,
// ..., / 512 after 8000; s = round(sqrt(p * features / channels))).
//   L-inf: start from vertical stripes of +-epsilon; a query sets a window to +-epsilon per
//          channel.
//   L2:    start from a grid of the paper's centred "eta" windows; a query moves the mass of
//          one window into another and redraws it, keeping the norm at epsilon.
// Constants and schedules follow the authors' implementation (github.com/fra31/auto-attack,
// autoattack/square.py, SquareAttack), with one difference: the window's place and the
// signs are drawn per sample from the sample's own counter-based stream (the reference draws
// one place for the whole batch), so a sample's result does not depend on its batch.
//
// Inputs of rank 4 are images [N, C, H, W]; rank-2 inputs need square_options::image_shape.
// Only samples classified correctly are attacked; the result holds, per sample, the example
// that broke it, or for a sample never broken the example of lowest margin.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <vector>

#include "advaug/attacks/apgd.hpp"  // correctly_classified, check_host_attack
#include "advaug/attacks/detail/attack_core.hpp"
#include "advaug/attacks/detail/margin_losses.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/detail/random.hpp"

namespace advaug {

/// Square Attack. Defaults: L-infinity, 5000 queries, p_init 0.8, 1 restart, seed 0, the
/// schedule rescaled to the number of queries (the reference's resc_schedule=True; autoattack()
/// turns it off, as AutoAttack does).
class square_options {
public:
    square_options& epsilon(double eps) {
        eps_ = detail::checked_epsilon("square_options::epsilon", eps);
        return *this;
    }
    square_options& norm(advaug::norm n) {
        norm_ = n;
        return *this;
    }
    /// Queries (forward passes of the samples not broken yet) per restart. requires: >= 1.
    square_options& n_queries(std::size_t q) {
        if (q == 0) detail::invalid("square_options::n_queries", "n_queries must be >= 1, got ", q);
        n_queries_ = q;
        return *this;
    }
    /// The initial fraction of the features a window covers. requires: 0 < p_init <= 1.
    square_options& p_init(double p) {
        if (!(p > 0 && p <= 1)) {
            detail::invalid("square_options::p_init", "p_init must be in (0, 1], got ", p);
        }
        p_init_ = p;
        return *this;
    }
    square_options& restarts(std::size_t r) {
        if (r == 0) detail::invalid("square_options::restarts", "restarts must be >= 1, got ", r);
        restarts_ = r;
        return *this;
    }
    /// Stretch the p schedule (written for 10,000 queries) over n_queries.
    square_options& rescale_schedule(bool b) {
        rescale_ = b;
        return *this;
    }
    /// How a sample's values form an image: channels x height x width (row-major, the layout
    /// of [N, C, H, W]). Required for rank-2 inputs; tabular data can use (1, 1, features).
    /// requires: every extent >= 1.
    square_options& image_shape(std::size_t channels, std::size_t height, std::size_t width) {
        if (channels == 0 || height == 0 || width == 0) {
            detail::invalid("square_options::image_shape", "every extent must be >= 1, got ",
                            channels, " x ", height, " x ", width);
        }
        shape_ = std::array<std::size_t, 3>{channels, height, width};
        return *this;
    }
    square_options& seed(std::uint64_t s) {
        seed_ = s;
        return *this;
    }
    square_options& domain(input_domain d) {
        domain_ = std::move(d);
        return *this;
    }

    double epsilon() const { return detail::require_epsilon("square", eps_); }
    advaug::norm norm() const { return norm_; }
    std::size_t n_queries() const { return n_queries_; }
    double p_init() const { return p_init_; }
    std::size_t restarts() const { return restarts_; }
    bool rescale_schedule() const { return rescale_; }
    const std::optional<std::array<std::size_t, 3>>& image_shape() const { return shape_; }
    std::uint64_t seed() const { return seed_; }
    const input_domain& domain() const { return domain_; }

private:
    std::optional<double> eps_;
    advaug::norm norm_ = advaug::norm::linf;
    std::size_t n_queries_ = 5000;
    double p_init_ = 0.8;
    std::size_t restarts_ = 1;
    bool rescale_ = true;
    std::optional<std::array<std::size_t, 3>> shape_;
    std::uint64_t seed_ = 0;
    input_domain domain_;
};

/// requires: as fgsm(); X a host tensor; rank 4, or image_shape set (its product the values
///           per sample).
/// ensures:  as apgd(): in the ball and the domain, misclassified samples unchanged,
///           epsilon == 0 returns x, the same seed gives the same result. Uses forward() only.
template <class M, class X>
requires detail::attack_tensor<X> X square(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const square_options& options,
                                           attack_workspace<M>& workspace);

template <class M, class X>
requires detail::attack_tensor<X> X square(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const square_options& options) {
    // checked before the workspace, whose members name the model's types
    if constexpr (detail::check_attack_model<M, X>()) {
        attack_workspace<M> workspace;
        return square(model, x, y, options, workspace);
    } else {
        return x;
    }
}

namespace detail {

/// The reference's p_selection: the window's share of the features after `it` queries.
inline double square_p(double p_init, std::size_t it, std::size_t n_queries, bool rescale) {
    const std::size_t i = rescale ? static_cast<std::size_t>(static_cast<double>(it) /
                                                             static_cast<double>(n_queries) * 10000)
                                  : it;
    constexpr std::array<std::size_t, 9> upto{10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    double p = p_init;
    for (std::size_t k : upto) {
        if (i <= k) return p;
        p /= 2;
    }
    return p;
}

/// The reference's eta_rectangles(a, b): nested rectangles around the centre, weights 1/(k+1)^2,
/// unit L2 norm; row-major a x b.
inline std::vector<double> square_eta_rectangles(std::size_t a, std::size_t b) {
    std::vector<double> delta(a * b, 0.0);
    const long xc = static_cast<long>(a / 2 + 1), yc = static_cast<long>(b / 2 + 1);
    long c0 = xc - 1, c1 = yc - 1;
    for (long k = 0; k < std::max(xc, yc); ++k) {
        const long r0 = std::max(c0, 0L), r1 = std::min(c0 + 2 * k + 1, static_cast<long>(a));
        const long q0 = std::max(c1, 0L), q1 = std::min(c1 + 2 * k + 1, static_cast<long>(b));
        for (long i = r0; i < r1; ++i)
            for (long j = q0; j < q1; ++j)
                delta[static_cast<std::size_t>(i) * b + static_cast<std::size_t>(j)] +=
                    1.0 / static_cast<double>((k + 1) * (k + 1));
        --c0;
        --c1;
    }
    double norm = 0;
    for (double v : delta) norm += v * v;
    norm = std::sqrt(norm);
    if (norm > 0)
        for (double& v : delta) v /= norm;
    return delta;
}

/// The reference's eta(s) without its random transpose: the upper half positive, the lower
/// negative, unit L2 norm; row-major s x s.
inline std::vector<double> square_eta(std::size_t s) {
    std::vector<double> eta(s * s, 0.0);
    const std::size_t top = s / 2;
    const auto up = square_eta_rectangles(top, s), down = square_eta_rectangles(s - top, s);
    for (std::size_t i = 0; i < top * s; ++i) eta[i] = up[i];
    for (std::size_t i = 0; i < (s - top) * s; ++i) eta[top * s + i] = -down[i];
    double norm = 0;
    for (double v : eta) norm += v * v;
    norm = std::sqrt(norm);
    if (norm > 0)
        for (double& v : eta) v /= norm;
    return eta;
}

/// A sample's random numbers: uniform number j of query `it`, query 0 being the start (which
/// has a stream of its own, as it may draw more numbers than a query).
struct square_draws {
    std::uint64_t start_key, query_key;
    std::size_t per_query;
    double operator()(std::size_t it, std::size_t j) const {
        return it == 0 ? counter_uniform(start_key, j, 0.0, 1.0)
                       : counter_uniform(query_key, (it - 1) * per_query + j, 0.0, 1.0);
    }
    /// floor(u * n), the reference's random_int(0, n).
    std::size_t index(std::size_t it, std::size_t j, std::size_t n) const {
        return std::min(n > 0 ? n - 1 : 0,
                        static_cast<std::size_t>((*this)(it, j) * static_cast<double>(n)));
    }
    double sign(std::size_t it, std::size_t j) const { return (*this)(it, j) < 0.5 ? -1.0 : 1.0; }
};

struct square_geometry {
    std::size_t c, h, w;
    std::size_t at(std::size_t ch, std::size_t i, std::size_t j) const {
        return (ch * h + i) * w + j;
    }
};

/// One Square run on every sample of x0: the result of apgd_single_run's kind.
template <class M, class T, std::size_t R>
apgd_run_result<T, R> square_single_run(loss_gradient<M>& oracle, const tensor<T, R>& x0,
                                        const label_vector& y, const resolved_domain<T>& dom,
                                        const square_options& o, const square_geometry& g,
                                        std::uint64_t key, const std::vector<std::size_t>& ids) {
    const std::size_t n = x0.shape()[0], d_size = dom.sample_size;
    const double eps = o.epsilon();
    const bool linf = o.norm() == advaug::norm::linf;
    const std::size_t per_query = linf ? 2 + g.c : 5 + g.c;
    const std::size_t features = g.c * g.h * g.w;
    std::vector<square_draws> draws(n);
    for (std::size_t s = 0; s < n; ++s)
        draws[s] = {mix_seed(key, ids[s], 1), mix_seed(key, ids[s], 2), per_query};
    std::map<std::size_t, std::vector<double>> etas;
    auto eta = [&](std::size_t s) -> const std::vector<double>& {
        auto it = etas.find(s);
        if (it == etas.end()) it = etas.emplace(s, square_eta(s)).first;
        return it->second;
    };
    auto model_units = [&](T* xs, const T* x0s, const double* delta_raw, double scale) {
        for (std::size_t d = 0; d < d_size; ++d) {
            xs[d] = std::clamp(x0s[d] + static_cast<T>(scale * delta_raw[d] * dom.model_per_raw[d]),
                               dom.lo[d], dom.hi[d]);
        }
    };
    auto l2 = [](const std::vector<double>& v) {
        double sum = 0;
        for (double e : v) sum += e * e;
        return std::sqrt(sum);
    };

    // --- the start ---
    tensor<T, R> x_best;
    resize_like(x_best, x0);
    std::vector<double> delta(d_size);
    // the L2 start's windows: side h / 5, centred
    const std::size_t s0 = std::max<std::size_t>(1, g.h / 5);
    const std::size_t sp0 = (g.h - std::min(g.h, s0 * 5)) / 2;
    for (std::size_t s = 0; s < n; ++s) {
        const T* x0s = x0.data() + s * d_size;
        T* xs = x_best.data() + s * d_size;
        std::fill(delta.begin(), delta.end(), 0.0);
        if (linf) {
            // vertical stripes: one sign per channel and column
            for (std::size_t ch = 0; ch < g.c; ++ch)
                for (std::size_t j = 0; j < g.w; ++j) {
                    const double sg = draws[s].sign(0, ch * g.w + j);
                    for (std::size_t i = 0; i < g.h; ++i) delta[g.at(ch, i, j)] = eps * sg;
                }
            model_units(xs, x0s, delta.data(), 1.0);
            continue;
        }
        const auto& e = eta(s0);
        std::size_t window = 0;
        for (std::size_t vh = sp0; vh + s0 <= g.h && vh < sp0 + (g.h / s0) * s0; vh += s0) {
            for (std::size_t vw = sp0; vw + s0 <= g.w && vw < sp0 + (g.w / s0) * s0;
                 vw += s0, ++window) {
                const std::size_t base = window * (1 + g.c);
                const bool transpose = draws[s](0, base) > 0.5;
                for (std::size_t ch = 0; ch < g.c; ++ch) {
                    const double sg = draws[s].sign(0, base + 1 + ch);
                    for (std::size_t i = 0; i < s0; ++i)
                        for (std::size_t j = 0; j < s0; ++j)
                            delta[g.at(ch, vh + i, vw + j)] +=
                                sg * (transpose ? e[j * s0 + i] : e[i * s0 + j]);
                }
            }
        }
        model_units(xs, x0s, delta.data(), eps / (l2(delta) + 1e-12));
    }

    apgd_run_result<T, R> out{x_best, std::vector<char>(n, 0), std::vector<double>(n)};
    std::vector<double>& margin_min = out.margin;
    const std::size_t classes = oracle.model.num_classes();
    oracle.predict(x_best);
    for (std::size_t s = 0; s < n; ++s) {
        const T* z = oracle.logits.data() + s * classes;
        margin_min[s] = margin_row(z, classes, static_cast<std::size_t>(y(s)));
        out.fooled[s] = predicted_class(z, classes) != static_cast<std::size_t>(y(s));
    }

    // --- the queries ---
    tensor<T, R> x_new;
    std::vector<std::size_t> active;
    std::vector<double> nd;
    for (std::size_t it = 0; it < o.n_queries(); ++it) {
        active.clear();
        for (std::size_t s = 0; s < n; ++s)
            if (!out.fooled[s]) active.push_back(s);
        if (active.empty()) break;
        gather_rows(x_best, active, x_new);  // one buffer for every query
        const double p = square_p(o.p_init(), it, o.n_queries(), o.rescale_schedule());
        const auto side = static_cast<std::size_t>(
            std::round(std::sqrt(p * static_cast<double>(features) / static_cast<double>(g.c))));
        for (std::size_t a = 0; a < active.size(); ++a) {
            const std::size_t s = active[a];
            const square_draws& r = draws[s];
            const std::size_t q = it + 1;  // query 0 is the start
            const T* x0s = x0.data() + s * d_size;
            T* xs = x_new.data() + a * d_size;
            if (linf) {
                const std::size_t sd = std::clamp<std::size_t>(side, 1, std::min(g.h, g.w));
                const std::size_t vh = r.index(q, 0, g.h - sd), vw = r.index(q, 1, g.w - sd);
                for (std::size_t ch = 0; ch < g.c; ++ch) {
                    const double sg = r.sign(q, 2 + ch);
                    for (std::size_t i = vh; i < vh + sd; ++i)
                        for (std::size_t j = vw; j < vw + sd; ++j) {
                            const std::size_t d = g.at(ch, i, j);
                            const T e = static_cast<T>(eps) * dom.model_per_raw[d];
                            const T v = xs[d] + static_cast<T>(2 * eps * sg) * dom.model_per_raw[d];
                            xs[d] = std::clamp(std::clamp(v, x0s[d] - e, x0s[d] + e), dom.lo[d],
                                               dom.hi[d]);
                        }
                }
                continue;
            }
            // L2: the reference's update, in raw units
            std::size_t sd = std::max<std::size_t>(side, 3);
            if (sd % 2 == 0) ++sd;
            sd = std::min(sd, std::min(g.h, g.w));
            const std::size_t vh = r.index(q, 0, g.h - sd), vw = r.index(q, 1, g.w - sd);
            const std::size_t vh2 = r.index(q, 2, g.h - sd), vw2 = r.index(q, 3, g.w - sd);
            const bool transpose = r(q, 4) > 0.5;
            for (std::size_t d = 0; d < d_size; ++d)
                delta[d] = static_cast<double>(xs[d] - x0s[d]) * dom.raw_per_model[d];
            auto in1 = [&](std::size_t i, std::size_t j) {
                return i >= vh && i < vh + sd && j >= vw && j < vw + sd;
            };
            auto in2 = [&](std::size_t i, std::size_t j) {
                return i >= vh2 && i < vh2 + sd && j >= vw2 && j < vw2 + sd;
            };
            double image2 = 0, windows2 = 0;
            for (std::size_t ch = 0; ch < g.c; ++ch)
                for (std::size_t i = 0; i < g.h; ++i)
                    for (std::size_t j = 0; j < g.w; ++j) {
                        const double v = delta[g.at(ch, i, j)];
                        image2 += v * v;
                        if (in1(i, j) || in2(i, j)) windows2 += v * v;
                    }
            const double target =
                std::sqrt(std::max(eps * eps - image2, 0.0) / static_cast<double>(g.c) + windows2);
            const auto& e = eta(sd);
            nd.assign(sd * sd, 0.0);
            for (std::size_t ch = 0; ch < g.c; ++ch) {
                double w1 = 0;
                for (std::size_t i = 0; i < sd; ++i)
                    for (std::size_t j = 0; j < sd; ++j) {
                        const double v = delta[g.at(ch, vh + i, vw + j)];
                        w1 += v * v;
                    }
                w1 = std::sqrt(w1);
                const double sg = r.sign(q, 5 + ch);
                double nn = 0;
                for (std::size_t i = 0; i < sd; ++i)
                    for (std::size_t j = 0; j < sd; ++j) {
                        const double et = transpose ? e[j * sd + i] : e[i * sd + j];
                        nd[i * sd + j] = sg * et + delta[g.at(ch, vh + i, vw + j)] / (1e-12 + w1);
                        nn += nd[i * sd + j] * nd[i * sd + j];
                    }
                const double f = target / (1e-12 + std::sqrt(nn));
                for (std::size_t i = vh2; i < vh2 + sd; ++i)
                    for (std::size_t j = vw2; j < vw2 + sd; ++j) delta[g.at(ch, i, j)] = 0;
                for (std::size_t i = 0; i < sd; ++i)
                    for (std::size_t j = 0; j < sd; ++j)
                        delta[g.at(ch, vh + i, vw + j)] = f * nd[i * sd + j];
            }
            model_units(xs, x0s, delta.data(), eps / (l2(delta) + 1e-12));
        }
        oracle.predict(x_new);
        for (std::size_t a = 0; a < active.size(); ++a) {
            const std::size_t s = active[a];
            const T* z = oracle.logits.data() + a * classes;
            const auto ys = static_cast<std::size_t>(y(s));
            const double m = margin_row(z, classes, ys);
            const bool fooled = predicted_class(z, classes) != ys;
            if (!(m < margin_min[s]) && !fooled) continue;
            margin_min[s] = m;
            out.fooled[s] = fooled;
            std::copy_n(x_new.data() + a * d_size, d_size, x_best.data() + s * d_size);
        }
    }
    out.adv = std::move(x_best);
    return out;
}

template <class M, class T, std::size_t R>
tensor<T, R> square_attack(const char* fn, const M& model, const tensor<T, R>& x,
                           const label_vector& y, const square_options& options,
                           attack_workspace<M>& workspace,
                           const std::vector<std::size_t>* sample_ids = nullptr) {
    const double eps = options.epsilon();
    const auto dom = check_attack_inputs(fn, model, x, y, options.domain());
    square_geometry g{};
    if (options.image_shape()) {
        const auto& s = *options.image_shape();
        g = {s[0], s[1], s[2]};
        if (s[0] * s[1] * s[2] != dom.sample_size) {
            invalid(fn, "image_shape ", s[0], " x ", s[1], " x ", s[2], " holds ",
                    s[0] * s[1] * s[2], " values, the inputs have ", dom.sample_size,
                    " per sample");
        }
    } else if constexpr (R == 4) {
        g = {x.shape()[1], x.shape()[2], x.shape()[3]};
    } else {
        invalid(fn, "inputs of rank ", R,
                " need square_options::image_shape(channels, height, width) (tabular data: "
                "image_shape(1, 1, features))");
    }
    tensor<T, R> out = x;
    if (eps == 0) return out;
    const std::size_t n = x.shape()[0], d_size = dom.sample_size;
    std::vector<std::size_t> all_ids(n);
    for (std::size_t s = 0; s < n; ++s) all_ids[s] = sample_ids ? (*sample_ids)[s] : s;

    loss_gradient<M> oracle(fn, model, &workspace);
    std::vector<std::size_t> alive = correctly_classified(oracle, x, y);
    std::vector<double> best_margin(n, std::numeric_limits<double>::infinity());
    for (std::size_t r = 0; r < options.restarts() && !alive.empty(); ++r) {
        const auto xs = gather_rows(x, alive);
        const auto ys = gather_labels(y, alive);
        std::vector<std::size_t> ids(alive.size());
        for (std::size_t i = 0; i < alive.size(); ++i) ids[i] = all_ids[alive[i]];
        const std::uint64_t key = mix_seed(options.seed(), 0x5157u, r);
        const auto run = square_single_run(oracle, xs, ys, dom, options, g, key, ids);
        std::vector<std::size_t> still;
        for (std::size_t i = 0; i < alive.size(); ++i) {
            const std::size_t s = alive[i];
            if (run.fooled[i] || run.margin[i] < best_margin[s]) {
                best_margin[s] = run.margin[i];
                std::copy_n(run.adv.data() + i * d_size, d_size, out.data() + s * d_size);
            }
            if (!run.fooled[i]) still.push_back(s);
        }
        alive = std::move(still);
    }
    return out;
}

}  // namespace detail

template <class M, class X>
requires detail::attack_tensor<X> X square(const M& model, const X& x, const detail::labels_t<X>& y,
                                           const square_options& options,
                                           attack_workspace<M>& workspace) {
    if constexpr (detail::check_host_attack<M, X>()) {
        return detail::square_attack("square", model, x, y, options, workspace);
    } else {
        return x;
    }
}

}  // namespace advaug
