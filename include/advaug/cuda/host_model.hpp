// A device model seen through host tensors, for the attacks that run on host models only
// (apgd, apgd_t, fab, fab_t, square, autoattack) and for evaluate_robustness:
//
//   advaug::cuda::cnn<float> gpu(trained_host_cnn);
//   advaug::cuda::host_model view(gpu);              // the model contract with advaug::tensor
//   auto adv = advaug::autoattack(view, host_images, host_labels, options);
//
// Each forward() uploads the batch, runs the device model and downloads the logits; each
// input_gradient() uploads dL/dlogits and downloads dL/dx. The attack's own element-wise work
// (steps, projections, losses, Square's proposals) runs on the host, the model's passes on the
// GPU, whole batches at a time (no rows_per_pass: a GPU wants large batches). Results are the
// host attack's on the device model's logits and gradients, so they differ from the same attack
// on the host model only by the device's rounding.
//
// The view holds a pointer to the device model, which must outlive it. mode() and set_mode() are
// the device model's. The backend serves one host thread at a time (docs/cuda.md, "Limits"), so
// evaluate_robustness takes the view with its default of one evaluation thread.
#pragma once

#include <cstddef>
#include <type_traits>

#include "advaug/cuda/tensor.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"

namespace advaug::cuda {

template <class M>
class host_model {
    static_assert(classifier<M>, "advaug: cuda::host_model wraps a model of the contract (model/classifier.hpp)");
    static_assert(!std::is_same_v<input_t<M>, advaug::tensor<typename M::value_type, M::input_rank>>,
                  "advaug: cuda::host_model wraps a device model; a host model is used as it is");

public:
    using value_type = typename M::value_type;
    static constexpr std::size_t input_rank = M::input_rank;
    using device_model = M;

    /// The device pass's record and the device copies of this pass's tensors.
    struct cache_type {
        typename M::cache_type device;
        input_t<M> x, dx;
        logits_t<M> logits, dlogits;
    };

    explicit host_model(M& model) : model_(&model) {}

    M& model() const { return *model_; }
    std::size_t num_classes() const { return model_->num_classes(); }
    advaug::mode mode() const { return model_->mode(); }
    void set_mode(advaug::mode m) { model_->set_mode(m); }
    /// The device model's, so that an attack may run it in either mode when it has no batch
    /// norm or dropout.
    bool is_mode_independent() const { return advaug::detail::mode_independent(*model_); }

    /// Uploads x, runs the device model's forward(), downloads the logits.
    void forward(const advaug::tensor<value_type, input_rank>& x, cache_type& cache,
                 advaug::tensor<value_type, 2>& logits) const {
        copy_to_device(x, cache.x);
        model_->forward(cache.x, cache.device, cache.logits);
        copy_to_host(cache.logits, logits);
    }

    /// Uploads dlogits, runs the device model's input_gradient(), downloads dx.
    void input_gradient(cache_type& cache, const advaug::tensor<value_type, 2>& dlogits,
                        advaug::tensor<value_type, input_rank>& dx) const {
        copy_to_device(dlogits, cache.dlogits);
        model_->input_gradient(cache.device, cache.dlogits, cache.dx);
        copy_to_host(cache.dx, dx);
    }

private:
    M* model_;
};

template <class M>
host_model(M&) -> host_model<M>;

}  // namespace advaug::cuda
