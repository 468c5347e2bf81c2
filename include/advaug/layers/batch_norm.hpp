// Batch normalization (Ioffe and Szegedy 2015) per feature, as torch.nn.BatchNorm1d on [N, F]
// (Rank 2) and torch.nn.BatchNorm2d on [N, C, H, W] (Rank 4).
//
//   train mode: y = weight * (x - mean_B) / sqrt(var_B + eps) + bias, where mean_B and the
//               biased variance var_B are taken per feature over the M = N (rank 2) or
//               M = N*H*W (rank 4) values of the batch; the output depends on the whole batch.
//   eval mode:  the same with running_mean and running_var: an affine map of each value.
//
// Parameters "weight" (gamma, init 1) and "bias" (beta, init 0), both [features]; buffers
// running_mean (init 0), running_var (init 1) and num_batches_tracked, as in PyTorch's
// state_dict. Buffers are not parameters: optimizers never see them.
//
// Running statistics follow PyTorch: running = (1 - momentum) * running + momentum * batch, with
// the unbiased batch variance var_B * M / (M - 1) for running_var (the biased one normalizes).
// Where they change, per the model contract (model/classifier.hpp):
//   - forward() is const and never changes them, in either mode;
//   - backward_input() never changes them;
//   - accumulate_gradient() (the layer's part of a model's parameter_gradient()) applies the
//     batch statistics that a train-mode forward pass stored in its cache, once per forward
//     pass however many times it is called on that cache.
// So an attack (forward + input_gradient) never changes the running statistics, and a training
// step that calls parameter_gradient() on its clean and on its adversarial pass updates them
// twice, as PyTorch does when both batches go through the model in train mode.
//
// Synchronized over processes: inside a data-parallel step whose shard carries a sum
// (detail/batch_shard.hpp; distributed::data_parallel with batch_norm_statistics::synchronized),
// a train-mode pass takes mean_B and var_B over the global batch (its sums and counts summed
// over the processes), and backward_input() the means of dy and dy * x_hat over the global
// batch too, so R processes compute what one process computes on the whole batch. Every
// process must then make the same train-mode passes in the same order (the trainer does).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "advaug/detail/batch_shard.hpp"
#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

/// eps and momentum of a batch_norm. Each setter validates its value at once.
/// Defaults are PyTorch's: eps 1e-5, momentum 0.1.
class batch_norm_options {
public:
    /// Added to the variance before the square root. requires: finite, > 0.
    batch_norm_options& eps(double e) {
        if (!std::isfinite(e) || e <= 0) {
            detail::invalid("batch_norm_options::eps", "eps must be finite and > 0, got ", e);
        }
        eps_ = e;
        return *this;
    }
    /// Weight of the newest batch in the running statistics. requires: in [0, 1].
    batch_norm_options& momentum(double m) {
        if (!(m >= 0 && m <= 1)) {
            detail::invalid("batch_norm_options::momentum", "momentum must be in [0, 1], got ", m);
        }
        momentum_ = m;
        return *this;
    }

    double eps() const { return eps_; }
    double momentum() const { return momentum_; }

private:
    double eps_ = 1e-5;
    double momentum_ = 0.1;
};

template <class T, std::size_t Rank = 2>
class batch_norm {
    static_assert(Rank == 2 || Rank == 4,
                  "batch_norm<T, Rank>: Rank must be 2 ([N, F]) or 4 ([N, C, H, W])");

public:
    using value_type = T;
    static constexpr std::size_t input_rank = Rank;
    static constexpr std::size_t output_rank = Rank;
    static constexpr optional_member optional_members =
        optional_member::output_shape | optional_member::describe |
        optional_member::append_parameters | optional_member::append_buffers;

    /// What the backward members need. Buffers are resized only when a shape changes.
    struct cache_type {
        tensor<T, Rank> x_hat;            // (x - mean) * inv_std, the normalized input
        tensor<T, 1> inv_std;             // 1 / sqrt(var + eps) of the statistics used
        tensor<T, 1> batch_mean;          // train mode: the batch's mean per feature
        tensor<T, 1> batch_var;           // train mode: the batch's biased variance per feature
        std::size_t count = 0;            // M, values per feature; 0 before forward()
        bool train = false;               // the forward pass used batch statistics
        bool statistics_pending = false;  // batch statistics not yet applied to the running ones
        // Synchronized train-mode pass: this process's share of the global batch (local / global
        // samples), by which its dy, the gradient of its shard's mean loss, is rescaled; else 0.
        double shard_share = 0;
        // Per-feature scratch in double, kept so that a step after the first allocates nothing.
        std::vector<double> mean, inv, sq;
        mutable std::vector<double> sum_a, sum_b;
    };

    /// requires: features >= 1.
    explicit batch_norm(std::size_t features, const batch_norm_options& options = {})
        : weight_(tensor<T, 1>::from_shape({features})),
          bias_(tensor<T, 1>::from_shape({features})),
          weight_grad_(tensor<T, 1>::from_shape({features})),
          bias_grad_(tensor<T, 1>::from_shape({features})),
          running_mean_(tensor<T, 1>::from_shape({features})),
          running_var_(tensor<T, 1>::from_shape({features})),
          eps_(options.eps()),
          momentum_(options.momentum()) {
        if (features == 0) detail::invalid("batch_norm", "features must be >= 1, got 0");
        weight_.fill(T(1));
        bias_.fill(T(0));
        running_mean_.fill(T(0));
        running_var_.fill(T(1));
        zero_grad();
    }

    std::size_t features() const { return weight_.size(); }

    /// The sample shape is kept. throws std::invalid_argument unless it is [features] (rank 2)
    /// or [features, H, W] (rank 4).
    std::vector<std::size_t> output_shape(const std::vector<std::size_t>& in) const {
        if (in.size() != Rank - 1 || in[0] != features()) {
            detail::invalid("batch_norm::output_shape", describe(), " expects samples of shape [",
                            features(), Rank == 4 ? ", H, W]" : "]", ", got ",
                            detail::shape_string(in));
        }
        return in;
    }
    /// "batch_norm1d(16)" or "batch_norm2d(16)", after PyTorch's class names.
    std::string describe() const {
        return detail::concat(Rank == 4 ? "batch_norm2d(" : "batch_norm1d(", features(), ")");
    }
    double eps() const { return eps_; }
    double momentum() const { return momentum_; }

    /// requires: x is [N, features] (rank 2) or [N, features, H, W] (rank 4); in train mode
    ///           M = N (times H*W) >= 2, since one value per feature has no variance.
    /// ensures:  y has the shape of x; the cache holds what backward needs. Running statistics
    ///           are unchanged.
    void forward(const tensor<T, Rank>& x, cache_type& cache, tensor<T, Rank>& y) const {
        check_input(x);
        const std::size_t n = x.shape()[0], c = features(), s = spatial(x.shape()), m = n * s;
        const bool train = mode_ == advaug::mode::train;
        const detail::batch_shard* shard = train ? detail::current_batch_shard() : nullptr;
        const bool sync = shard && shard->sum;
        if (train && m < 2 && !sync) {
            detail::invalid("batch_norm::forward",
                            "train mode needs more than 1 value per feature, got input shape ",
                            detail::shape_string(x.shape()), " (use eval mode for single samples)");
        }
        if (y.shape() != x.shape()) y.resize(x.shape());
        if (cache.x_hat.shape() != x.shape()) cache.x_hat.resize(x.shape());
        resize(cache.inv_std, c);
        std::vector<double>& mean = cache.mean;
        std::vector<double>& inv = cache.inv;
        mean.assign(c, 0.0);
        inv.assign(c, 0.0);
        std::size_t count = m;  // values per feature the statistics are taken over
        if (train) {
            resize(cache.batch_mean, c);
            resize(cache.batch_var, c);
            // Two passes in double: the mean, then the squared deviations from it.
            std::vector<double>& sq = cache.sq;
            sq.assign(c, 0.0);
            channel_sums(x.data(), n, s, mean.data());
            if (sync) {
                mean.push_back(static_cast<double>(m));
                shard->sum(std::span<double>(mean));
                count = static_cast<std::size_t>(mean.back());
                mean.pop_back();
                if (count < 2) {
                    detail::invalid("batch_norm::forward",
                                    "train mode needs more than 1 value per feature, got ", count,
                                    " over all processes");
                }
            }
            for (auto& v : mean) v /= static_cast<double>(count);
            for (std::size_t i = 0; i < n; ++i) {
                for (std::size_t ch = 0; ch < c; ++ch) {
                    const T* xp = x.data() + (i * c + ch) * s;
                    double acc = 0;
                    for (std::size_t k = 0; k < s; ++k) {
                        const double d = static_cast<double>(xp[k]) - mean[ch];
                        acc += d * d;
                    }
                    sq[ch] += acc;
                }
            }
            if (sync) shard->sum(std::span<double>(sq));
            for (std::size_t ch = 0; ch < c; ++ch) {
                const double var = sq[ch] / static_cast<double>(count);
                cache.batch_mean(ch) = static_cast<T>(mean[ch]);
                cache.batch_var(ch) = static_cast<T>(var);
                inv[ch] = 1.0 / std::sqrt(var + eps_);
            }
        } else {
            for (std::size_t ch = 0; ch < c; ++ch) {
                mean[ch] = static_cast<double>(running_mean_(ch));
                inv[ch] = 1.0 / std::sqrt(static_cast<double>(running_var_(ch)) + eps_);
            }
        }
        for (std::size_t ch = 0; ch < c; ++ch) cache.inv_std(ch) = static_cast<T>(inv[ch]);
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t ch = 0; ch < c; ++ch) {
                const std::size_t off = (i * c + ch) * s;
                const T* xp = x.data() + off;
                T* hp = cache.x_hat.data() + off;
                T* yp = y.data() + off;
                const T g = weight_(ch), b = bias_(ch);
                for (std::size_t k = 0; k < s; ++k) {
                    const T h = static_cast<T>((static_cast<double>(xp[k]) - mean[ch]) * inv[ch]);
                    hp[k] = h;
                    yp[k] = g * h + b;
                }
            }
        }
        cache.count = count;
        cache.train = train;
        cache.statistics_pending = train;
        cache.shard_share =
            sync ? static_cast<double>(shard->local) / static_cast<double>(shard->global) : 0.0;
    }

    /// dx = the input gradient for the output gradient dy (overwritten). After a train-mode
    /// forward pass it goes through the batch statistics:
    ///   dx = weight * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat)),
    /// means per feature; after an eval-mode pass, dx = weight * inv_std * dy.
    void backward_input(const cache_type& cache, const tensor<T, Rank>& dy,
                        tensor<T, Rank>& dx) const {
        check_backward("batch_norm::backward_input", cache, dy);
        const std::size_t n = dy.shape()[0], c = features(), s = spatial(dy.shape());
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        std::vector<double>& mean_dy = cache.sum_a;
        std::vector<double>& mean_dyh = cache.sum_b;
        mean_dy.assign(c, 0.0);
        mean_dyh.assign(c, 0.0);
        if (cache.train) {
            gradient_sums(cache, dy, mean_dy.data(), mean_dyh.data());
            double inv_m = 1.0 / static_cast<double>(cache.count);
            if (const double share = cache.shard_share; share > 0) {
                // The global batch's means of dy and dy * x_hat, for the gradient of the global
                // mean loss (dy * share), then back to this shard's scale (/ share).
                const detail::batch_shard* shard = detail::current_batch_shard();
                if (!shard || !shard->sum) {
                    detail::invalid("batch_norm::backward_input",
                                    "the forward pass was synchronized over processes, this "
                                    "backward pass runs outside the data-parallel step");
                }
                mean_dy.insert(mean_dy.end(), mean_dyh.begin(), mean_dyh.end());
                for (double& v : mean_dy) v *= share;
                shard->sum(std::span<double>(mean_dy));
                std::copy(mean_dy.begin() + static_cast<std::ptrdiff_t>(c), mean_dy.end(),
                          mean_dyh.begin());
                mean_dy.resize(c);
                inv_m /= share;
            }
            for (std::size_t ch = 0; ch < c; ++ch) {
                mean_dy[ch] *= inv_m;
                mean_dyh[ch] *= inv_m;
            }
        }
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t ch = 0; ch < c; ++ch) {
                const std::size_t off = (i * c + ch) * s;
                const T* gp = dy.data() + off;
                const T* hp = cache.x_hat.data() + off;
                T* dp = dx.data() + off;
                const double scale =
                    static_cast<double>(weight_(ch)) * static_cast<double>(cache.inv_std(ch));
                for (std::size_t k = 0; k < s; ++k) {
                    const double g = static_cast<double>(gp[k]) - mean_dy[ch] -
                                     static_cast<double>(hp[k]) * mean_dyh[ch];
                    dp[k] = static_cast<T>(scale * g);
                }
            }
        }
    }

    /// weight_grad += sum(dy * x_hat), bias_grad += sum(dy), per feature. After a train-mode
    /// forward pass, the first call on its cache also moves the running statistics towards the
    /// batch statistics stored there (the one place they change).
    /// With `scale`, the gradients grow by scale times those sums (the statistics as without).
    void accumulate_gradient(cache_type& cache, const tensor<T, Rank>& dy, T scale = T(1)) {
        check_backward("batch_norm::accumulate_gradient", cache, dy);
        const std::size_t c = features();
        std::vector<double>& sum_dy = cache.sum_a;
        std::vector<double>& sum_dyh = cache.sum_b;
        sum_dy.assign(c, 0.0);
        sum_dyh.assign(c, 0.0);
        gradient_sums(cache, dy, sum_dy.data(), sum_dyh.data());
        const double sc = static_cast<double>(scale);
        for (std::size_t ch = 0; ch < c; ++ch) {
            weight_grad_(ch) += static_cast<T>(sc * sum_dyh[ch]);
            bias_grad_(ch) += static_cast<T>(sc * sum_dy[ch]);
        }
        if (cache.statistics_pending) {
            const double mo = momentum_;
            const double unbias =
                static_cast<double>(cache.count) / static_cast<double>(cache.count - 1);
            for (std::size_t ch = 0; ch < c; ++ch) {
                running_mean_(ch) =
                    static_cast<T>((1 - mo) * static_cast<double>(running_mean_(ch)) +
                                   mo * static_cast<double>(cache.batch_mean(ch)));
                running_var_(ch) =
                    static_cast<T>((1 - mo) * static_cast<double>(running_var_(ch)) +
                                   mo * unbias * static_cast<double>(cache.batch_var(ch)));
            }
            ++num_batches_tracked_;
            cache.statistics_pending = false;
        }
    }

    void zero_grad() {
        weight_grad_.fill(T(0));
        bias_grad_.fill(T(0));
    }

    /// "<prefix>weight" [features] and "<prefix>bias" [features]; the running statistics are
    /// buffers, not parameters.
    void append_parameters(std::vector<parameter_view<T>>& out, const std::string& prefix) {
        out.push_back({prefix + "weight",
                       {features()},
                       {weight_.data(), weight_.size()},
                       {weight_grad_.data(), weight_grad_.size()}});
        out.push_back({prefix + "bias",
                       {features()},
                       {bias_.data(), bias_.size()},
                       {bias_grad_.data(), bias_grad_.size()}});
    }

    std::vector<parameter_view<T>> parameters() {
        std::vector<parameter_view<T>> out;
        append_parameters(out, "");
        return out;
    }

    /// "<prefix>running_mean" and "<prefix>running_var" as views with an empty gradient: state
    /// that model files save and load but optimizers never see.
    void append_buffers(std::vector<parameter_view<T>>& out, const std::string& prefix) {
        out.push_back({prefix + "running_mean", {features()}, {running_mean_.data(), running_mean_.size()}, {}});
        out.push_back({prefix + "running_var", {features()}, {running_var_.data(), running_var_.size()}, {}});
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

    /// gamma and beta. Assign in place (xt::noalias or element loops) to keep parameter views
    /// valid.
    tensor<T, 1>& weight() { return weight_; }
    const tensor<T, 1>& weight() const { return weight_; }
    tensor<T, 1>& bias() { return bias_; }
    const tensor<T, 1>& bias() const { return bias_; }

    /// The buffers of PyTorch's state_dict: running_mean, running_var, num_batches_tracked.
    /// Writable, so that a checkpoint can be loaded.
    tensor<T, 1>& running_mean() { return running_mean_; }
    const tensor<T, 1>& running_mean() const { return running_mean_; }
    tensor<T, 1>& running_var() { return running_var_; }
    const tensor<T, 1>& running_var() const { return running_var_; }
    std::int64_t& num_batches_tracked() { return num_batches_tracked_; }
    std::int64_t num_batches_tracked() const { return num_batches_tracked_; }

private:
    template <class Shape>
    static std::size_t spatial(const Shape& shape) {
        if constexpr (Rank == 4) {
            return shape[2] * shape[3];
        } else {
            (void)shape;
            return 1;
        }
    }

    static void resize(tensor<T, 1>& t, std::size_t c) {
        if (t.size() != c) t.resize({c});
    }

    /// sums[ch] = sum of the M values of feature ch.
    void channel_sums(const T* data, std::size_t n, std::size_t s, double* sums) const {
        const std::size_t c = features();
        for (std::size_t ch = 0; ch < c; ++ch) sums[ch] = 0;
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t ch = 0; ch < c; ++ch) {
                const T* p = data + (i * c + ch) * s;
                double acc = 0;
                for (std::size_t k = 0; k < s; ++k) acc += static_cast<double>(p[k]);
                sums[ch] += acc;
            }
        }
    }

    /// sum(dy) and sum(dy * x_hat) per feature.
    void gradient_sums(const cache_type& cache, const tensor<T, Rank>& dy, double* sum_dy,
                       double* sum_dyh) const {
        const std::size_t n = dy.shape()[0], c = features(), s = spatial(dy.shape());
        for (std::size_t i = 0; i < n; ++i) {
            for (std::size_t ch = 0; ch < c; ++ch) {
                const std::size_t off = (i * c + ch) * s;
                const T* gp = dy.data() + off;
                const T* hp = cache.x_hat.data() + off;
                double a = 0, b = 0;
                for (std::size_t k = 0; k < s; ++k) {
                    a += static_cast<double>(gp[k]);
                    b += static_cast<double>(gp[k]) * static_cast<double>(hp[k]);
                }
                sum_dy[ch] += a;
                sum_dyh[ch] += b;
            }
        }
    }

    void check_input(const tensor<T, Rank>& x) const {
        if (x.shape()[1] != features()) {
            detail::invalid("batch_norm::forward", "inputs have shape ",
                            detail::shape_string(x.shape()), ", the layer expects [N, ", features(),
                            Rank == 4 ? ", H, W]" : "]");
        }
    }

    void check_backward(const char* fn, const cache_type& cache, const tensor<T, Rank>& dy) const {
        if (cache.count == 0) detail::invalid(fn, "the cache was not filled by forward()");
        if (dy.shape() != cache.x_hat.shape()) {
            detail::invalid(fn, "the output gradient has shape ", detail::shape_string(dy.shape()),
                            ", the layer's output is ", detail::shape_string(cache.x_hat.shape()));
        }
    }

    tensor<T, 1> weight_;
    tensor<T, 1> bias_;
    tensor<T, 1> weight_grad_;
    tensor<T, 1> bias_grad_;
    tensor<T, 1> running_mean_;
    tensor<T, 1> running_var_;
    std::int64_t num_batches_tracked_ = 0;
    double eps_;
    double momentum_;
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
