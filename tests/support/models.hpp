// Small models for the tests: a linear softmax classifier written against the contract
// (FGSM is the exact maximizer of its linearized loss), and helpers for random data.
#pragma once

#include <advaug/advaug.hpp>

#include <cstdint>
#include <limits>
#include <vector>

namespace advaug::testing {

/// logits = x W^T + b; a trainable classifier in a dozen lines, input rank 2.
template <class T>
struct linear_model {
    using value_type = T;
    static constexpr std::size_t input_rank = 2;
    struct cache_type {
        const tensor<T, 2>* x = nullptr;
    };

    linear_model(std::size_t in, std::size_t classes, std::uint64_t seed)
        : w(tensor<T, 2>::from_shape({classes, in})), b(tensor<T, 1>::from_shape({classes})),
          dw(tensor<T, 2>::from_shape({classes, in})), db(tensor<T, 1>::from_shape({classes})) {
        rng gen(seed);
        for (auto& v : w) v = static_cast<T>(gen.normal());
        for (auto& v : b) v = static_cast<T>(0.1 * gen.normal());
        zero_grad();
    }

    std::size_t num_classes() const { return b.size(); }
    void forward(const tensor<T, 2>& x, cache_type& c, tensor<T, 2>& logits) const {
        logits = xt::eval(xt::zeros<T>({x.shape()[0], b.size()}));
        for (std::size_t n = 0; n < x.shape()[0]; ++n)
            for (std::size_t k = 0; k < b.size(); ++k) {
                T s = b(k);
                for (std::size_t d = 0; d < x.shape()[1]; ++d) s += x(n, d) * w(k, d);
                logits(n, k) = s;
            }
        c.x = &x;
    }
    void input_gradient(cache_type& c, const tensor<T, 2>& g, tensor<T, 2>& dx) const {
        dx = xt::eval(xt::zeros<T>(c.x->shape()));
        for (std::size_t n = 0; n < g.shape()[0]; ++n)
            for (std::size_t k = 0; k < g.shape()[1]; ++k)
                for (std::size_t d = 0; d < dx.shape()[1]; ++d) dx(n, d) += g(n, k) * w(k, d);
    }
    void parameter_gradient(cache_type& c, const tensor<T, 2>& g) {
        for (std::size_t n = 0; n < g.shape()[0]; ++n)
            for (std::size_t k = 0; k < g.shape()[1]; ++k) {
                db(k) += g(n, k);
                for (std::size_t d = 0; d < w.shape()[1]; ++d) dw(k, d) += g(n, k) * (*c.x)(n, d);
            }
    }
    void zero_grad() {
        dw.fill(T(0));
        db.fill(T(0));
    }
    std::vector<parameter_view<T>> parameters() {
        return {{"weight", {w.shape()[0], w.shape()[1]}, {w.data(), w.size()}, {dw.data(), dw.size()}},
                {"bias", {b.size()}, {b.data(), b.size()}, {db.data(), db.size()}}};
    }
    advaug::mode mode() const { return m; }
    void set_mode(advaug::mode mm) { m = mm; }

    tensor<T, 2> w;
    tensor<T, 1> b;
    tensor<T, 2> dw;
    tensor<T, 1> db;
    advaug::mode m = advaug::mode::eval;
};

/// Uniform random values in [lo, hi), shape {rows, cols}.
template <class T>
tensor<T, 2> uniform_batch(std::size_t rows, std::size_t cols, std::uint64_t seed, double lo = 0.0,
                           double hi = 1.0) {
    auto x = tensor<T, 2>::from_shape({rows, cols});
    rng gen(seed);
    for (auto& v : x) v = static_cast<T>(gen.uniform(lo, hi));
    return x;
}

inline label_vector cyclic_labels(std::size_t rows, std::size_t classes) {
    auto y = label_vector::from_shape({rows});
    for (std::size_t i = 0; i < rows; ++i) y(i) = static_cast<std::int64_t>(i % classes);
    return y;
}

/// Snapshot of every parameter value and gradient, for "the attack changed nothing" checks.
template <class M>
std::vector<std::vector<typename M::value_type>> snapshot(M& model) {
    std::vector<std::vector<typename M::value_type>> out;
    for (auto& p : model.parameters()) {
        out.emplace_back(p.value.begin(), p.value.end());
        out.emplace_back(p.grad.begin(), p.grad.end());
    }
    return out;
}

template <class T, std::size_t N>
double max_abs_diff(const tensor<T, N>& a, const tensor<T, N>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        m = std::max(m, std::abs(static_cast<double>(a.data()[i]) - static_cast<double>(b.data()[i])));
    }
    return m;
}

}  // namespace advaug::testing
