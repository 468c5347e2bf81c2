// SGD with momentum, Nesterov momentum and weight decay over a device model's parameters:
// advaug::sgd's update (torch.optim.SGD, dampening 0) as one kernel per parameter, with the
// momentum buffers on the device. It satisfies the optimizer contract of optim/optimizer.hpp,
// and its saved state has advaug::sgd's format (the buffers are downloaded), so a checkpoint
// can move between a host and a device run.
//
//   advaug::cuda::sgd<float> opt(advaug::sgd_options{}.momentum(0.9));
//   auto params = gpu_model.parameters();
//   opt.step(params, 0.05);
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "advaug/backend/element_math.hpp"
#include "advaug/cuda/kernels.hpp"
#include "advaug/cuda/tensor.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/optim/detail/state.hpp"
#include "advaug/optim/sgd.hpp"

namespace advaug::cuda {

namespace detail {

/// backend::element::sgd over one parameter, as advaug::sgd::step; buf is null without
/// momentum.
template <class T>
__global__ void sgd_kernel(T* w, const T* grad, T* buf, std::size_t n, T wd, T mu, T neg_lr,
                           bool decay, bool nesterov, bool first) {
    ADVAUG_GRID_STRIDE(i, n) {
        const bool momentum = buf != nullptr;
        const auto r = backend::element::sgd(w[i], grad[i], momentum && !first ? buf[i] : T(0), wd,
                                             mu, neg_lr, decay, momentum, nesterov, first);
        w[i] = r.weight;
        if (momentum) buf[i] = r.buffer;
    }
}

}  // namespace detail

/// SGD over parameter views of DEVICE memory (the parameters() of cuda::mlp / cuda::cnn).
template <class T>
class sgd {
    static_assert(std::is_floating_point_v<T>, "advaug::cuda::sgd<T>: T must be float or double");

public:
    using value_type = T;

    /// requires: !options.nesterov() || options.momentum() > 0.
    explicit sgd(sgd_options options = {}) : options_(options) { options_.validate("cuda::sgd"); }

    /// As advaug::sgd::step; the update is queued on the device.
    void step(std::vector<parameter_view<T>>& params, double lr) {
        const char* fn = "cuda::sgd::step";
        advaug::detail::check_lr(fn, lr);
        const bool first = steps_ == 0;
        if (first) {
            auto layout = advaug::detail::optimizer_layout::of(fn, params);
            if (has_buffers()) {
                momentum_.allocate(layout.total(), fn);
            }
            layout_ = std::move(layout);
        } else {
            layout_.check(fn, params);
        }
        const T wd = static_cast<T>(options_.weight_decay());
        const T mu = static_cast<T>(options_.momentum());
        const T neg_lr = static_cast<T>(-lr);
        for (std::size_t p = 0; p < params.size(); ++p) {
            const std::size_t n = params[p].value.size();
            if (n == 0) continue;
            T* buf = has_buffers() ? momentum_.data() + layout_.offset(p) : nullptr;
            const context& ctx = context::get(fn);
            detail::sgd_kernel<<<detail::grid_for(n), detail::block_size, 0, ctx.stream()>>>(
                params[p].value.data(), params[p].grad.data(), buf, n, wd, mu, neg_lr,
                options_.weight_decay() != 0, options_.nesterov(), first);
            ADVAUG_CUDA_CHECK_LAUNCH(fn, "sgd_kernel");
        }
        ++steps_;
    }

    /// advaug::sgd's format: tag, options, step count, layout, momentum buffers.
    void save_state(io::binary_writer& out) const {
        const char* fn = "cuda::sgd::save_state";
        advaug::detail::write_state_header<T>(out, "sgd");
        out.write<double>(options_.momentum());
        out.write<std::uint8_t>(options_.nesterov() ? 1 : 0);
        out.write<double>(options_.weight_decay());
        out.write<std::uint64_t>(steps_);
        layout_.write(out);
        if (has_buffers() && steps_ > 0) {
            std::vector<T> host(layout_.total());
            cuda::detail::download(fn, momentum_.data(), host.data(), host.size());
            for (std::size_t i = 0; i < layout_.count(); ++i) {
                out.write_array(host.data() + layout_.offset(i), layout_.size(i));
            }
        }
    }

    /// Restores a state written by save_state() or by advaug::sgd; leaves this optimizer
    /// unchanged on an error.
    void load_state(io::binary_reader& in, const std::vector<parameter_view<T>>& params) {
        constexpr const char* fn = "cuda::sgd::load_state";
        advaug::detail::read_state_header<T>(in, fn, "sgd");
        advaug::detail::check_saved_option(fn, "momentum", in.read<double>("sgd momentum"),
                                           options_.momentum());
        advaug::detail::check_saved_option(
            fn, "nesterov", in.read<std::uint8_t>("sgd nesterov") != 0, options_.nesterov());
        advaug::detail::check_saved_option(fn, "weight_decay", in.read<double>("sgd weight_decay"),
                                           options_.weight_decay());
        const auto steps = in.read<std::uint64_t>("step count");
        auto layout = advaug::detail::optimizer_layout::read(in, fn, params, steps);
        std::vector<T> host;
        if (has_buffers() && steps > 0) {
            host.resize(layout.total());
            for (std::size_t i = 0; i < layout.count(); ++i) {
                in.read_array_into("momentum buffer", host.data() + layout.offset(i),
                                   layout.size(i));
            }
        }
        device_buffer<T> momentum(host.size(), fn);
        cuda::detail::upload(fn, host.data(), momentum.data(), host.size());
        context::get(fn).synchronize(fn);  // `host` goes out of scope
        steps_ = steps;
        layout_ = std::move(layout);
        momentum_ = std::move(momentum);
    }

    const sgd_options& options() const { return options_; }
    std::uint64_t step_count() const { return steps_; }

private:
    bool has_buffers() const { return options_.momentum() != 0; }

    sgd_options options_;
    std::uint64_t steps_ = 0;
    advaug::detail::optimizer_layout layout_;
    device_buffer<T> momentum_;
};

}  // namespace advaug::cuda
