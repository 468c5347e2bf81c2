// sequential: a model built from layers at run time, checked for shape compatibility as it is
// built, satisfying trainable_classifier (model/classifier.hpp).
//
//   auto net = advaug::sequential<float, 4>({1, 28, 28})       // sample shape [C, H, W]
//                  .add(advaug::conv2d<float>(1, 32, 3, gen, advaug::conv2d_options{}.padding(1)))
//                  .add(advaug::relu<float, 4>{})
//                  .add(advaug::flatten<float>{})
//                  .add(advaug::dense<float>(32 * 28 * 28, 10, gen));
//
// A layer is any class that follows the layer contract of layers/layer.hpp; add() checks it
// with check_layer (layers/static_checks.hpp), so a missing member, or an optional member that
// is misspelled, mis-typed or not listed in `optional_members`, is one readable error. Nothing
// is registered: a user's own layer is added like a bundled one.
//
// Parameter names follow torch.nn.Sequential's state_dict: "<layer index>.<name>", counting
// every layer (so dense, relu, dense gives "0.weight", "0.bias", "2.weight", "2.bias").
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/detail/xtensor.hpp"
#include "advaug/layers/activations.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/pooling.hpp"
#include "advaug/layers/static_checks.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"

namespace advaug {

namespace detail {

/// Storage for one activation of rank 2 or 4; the rank in use is known from the layers.
template <class T>
struct activation {
    tensor<T, 2> r2;
    tensor<T, 4> r4;
    template <std::size_t R>
    tensor<T, R>& get() {
        if constexpr (R == 2) return r2; else return r4;
    }
};

/// Read-only access to an activation that may be the model's input.
template <class T>
struct activation_in {
    const tensor<T, 2>* r2 = nullptr;
    const tensor<T, 4>* r4 = nullptr;
    template <std::size_t R>
    const tensor<T, R>& get() const {
        if constexpr (R == 2) return *r2; else return *r4;
    }
};

template <class T>
activation_in<T> in_of(activation<T>& a) {
    return {&a.r2, &a.r4};
}

struct layer_cache_base {
    virtual ~layer_cache_base() = default;
};

/// The type-erased view of a layer that sequential works with.
template <class T>
class layer_slot {
public:
    virtual ~layer_slot() = default;
    virtual std::size_t input_rank() const = 0;
    virtual std::size_t output_rank() const = 0;
    virtual std::vector<std::size_t> output_shape(const std::vector<std::size_t>& in) const = 0;
    virtual std::string describe() const = 0;
    virtual std::unique_ptr<layer_cache_base> make_cache(std::uint64_t stream) const = 0;
    virtual void forward(activation_in<T> x, layer_cache_base& c, activation<T>& y) const = 0;
    virtual void forward_into(activation_in<T> x, layer_cache_base& c, tensor<T, 2>& y) const = 0;
    virtual void backward_input(layer_cache_base& c, activation_in<T> dy, activation<T>& dx) const = 0;
    /// Adds scale * dL/dparameters; `scratch` holds a scaled dy for layers that cannot scale.
    virtual void accumulate_gradient(layer_cache_base& c, activation_in<T> dy, T scale, activation<T>& scratch) = 0;
    virtual bool mode_independent() const = 0;
    virtual void append_parameters(std::vector<parameter_view<T>>& out, const std::string& prefix) = 0;
    virtual void append_buffers(std::vector<parameter_view<T>>& out, const std::string& prefix) = 0;
    virtual void zero_grad() = 0;
    virtual void set_mode(advaug::mode m) = 0;
    virtual std::unique_ptr<layer_slot> clone() const = 0;
    virtual void* get() = 0;
};

template <class T, class L>
class layer_holder final : public layer_slot<T> {
    static constexpr std::size_t in_rank = L::input_rank, out_rank = L::output_rank;
    struct cache : layer_cache_base {
        typename L::cache_type c;
    };

public:
    explicit layer_holder(L layer) : layer_(std::move(layer)) {}

    std::size_t input_rank() const override { return in_rank; }
    std::size_t output_rank() const override { return out_rank; }
    std::vector<std::size_t> output_shape(const std::vector<std::size_t>& in) const override {
        if constexpr (detail::layer_contract::declares_output_shape<L>) {
            const auto out = layer_.output_shape(in);
            return std::vector<std::size_t>(out.begin(), out.end());
        } else {
            return in;  // check_layer refused a layer that changes the rank without output_shape
        }
    }
    std::string describe() const override {
        if constexpr (detail::layer_contract::declares_describe<L>) {
            return layer_.describe();
        } else {
            return "layer";
        }
    }
    std::unique_ptr<layer_cache_base> make_cache(std::uint64_t stream) const override {
        auto c = std::make_unique<cache>();
        if constexpr (detail::layer_contract::declares_cache_stream<L>) c->c.stream = stream;
        return c;
    }
    void forward(activation_in<T> x, layer_cache_base& c, activation<T>& y) const override {
        layer_.forward(x.template get<in_rank>(), static_cast<cache&>(c).c, y.template get<out_rank>());
    }
    void forward_into(activation_in<T> x, layer_cache_base& c, tensor<T, 2>& y) const override {
        if constexpr (out_rank == 2) {
            layer_.forward(x.template get<in_rank>(), static_cast<cache&>(c).c, y);
        }
    }
    void backward_input(layer_cache_base& c, activation_in<T> dy, activation<T>& dx) const override {
        layer_.backward_input(static_cast<cache&>(c).c, dy.template get<out_rank>(), dx.template get<in_rank>());
    }
    void accumulate_gradient(layer_cache_base& c, activation_in<T> dy, T scale, activation<T>& scratch) override {
        auto& lc = static_cast<cache&>(c).c;
        const auto& g = dy.template get<out_rank>();
        if constexpr (detail::layer_contract::has_scaled_accumulate_gradient<L>) {
            layer_.accumulate_gradient(lc, g, scale);
        } else if (scale == T(1)) {
            layer_.accumulate_gradient(lc, g);
        } else {
            auto& scaled = scratch.template get<out_rank>();
            if (scaled.shape() != g.shape()) scaled.resize(g.shape());
            for (std::size_t i = 0; i < g.size(); ++i) scaled.data()[i] = scale * g.data()[i];
            layer_.accumulate_gradient(lc, scaled);
        }
    }
    bool mode_independent() const override {
        if constexpr (detail::layer_contract::has_mode_independent<L>) {
            return static_cast<bool>(L::mode_independent);
        } else {
            return false;
        }
    }
    void append_parameters(std::vector<parameter_view<T>>& out, const std::string& prefix) override {
        if constexpr (detail::layer_contract::declares_append_parameters<L>) {
            layer_.append_parameters(out, prefix);
        } else {
            for (auto& p : layer_.parameters()) {
                p.name = prefix + p.name;
                out.push_back(std::move(p));
            }
        }
    }
    void append_buffers(std::vector<parameter_view<T>>& out, const std::string& prefix) override {
        if constexpr (detail::layer_contract::declares_append_buffers<L>) layer_.append_buffers(out, prefix);
    }
    void zero_grad() override { layer_.zero_grad(); }
    void set_mode(advaug::mode m) override { layer_.set_mode(m); }
    std::unique_ptr<layer_slot<T>> clone() const override { return std::make_unique<layer_holder>(layer_); }
    void* get() override { return &layer_; }
    const L& layer() const { return layer_; }
    /// The layer's own cache inside a cache make_cache() made.
    static typename L::cache_type& record(layer_cache_base& c) { return static_cast<cache&>(c).c; }

private:
    L layer_;
};

}  // namespace detail

template <class T, std::size_t InputRank>
class sequential {
    static_assert(InputRank == 2 || InputRank == 4, "advaug: sequential takes inputs of rank 2 or 4");

public:
    using value_type = T;
    static constexpr std::size_t input_rank = InputRank;

    struct cache_type {
        std::vector<std::unique_ptr<detail::layer_cache_base>> layers;
        std::vector<detail::activation<T>> outputs;  // outputs of all but the last layer
        // dL/d(outputs[i]), one buffer per layer boundary: a buffer keeps one shape, so a
        // backward pass after the first allocates nothing (shared buffers were resized).
        std::vector<detail::activation<T>> deltas;
        std::vector<detail::activation<T>> scaled;  // per layer: a scaled dy, for layers that cannot scale
        const tensor<T, InputRank>* x = nullptr;
        /// Random stream of layers such as dropout: caches used in turn (a trainer's clean and
        /// adversarial passes) draw different masks when their streams differ.
        std::uint64_t stream = 0;
    };

    /// `sample_shape` is the shape of one input sample: [features] or [channels, height, width].
    explicit sequential(std::vector<std::size_t> sample_shape) : input_shape_(std::move(sample_shape)) {
        if (input_shape_.size() + 1 != InputRank) {
            detail::invalid("sequential", "a rank-", InputRank, " model needs a sample shape of ", InputRank - 1,
                            " entries, got ", detail::shape_string(input_shape_));
        }
        for (auto d : input_shape_) {
            if (d == 0) detail::invalid("sequential", "sample shape ", detail::shape_string(input_shape_), " has a zero");
        }
    }

    sequential(const sequential& other)
        : input_shape_(other.input_shape_), shapes_(other.shapes_), relu_pool_(other.relu_pool_), mode_(other.mode_) {
        for (const auto& l : other.layers_) layers_.push_back(l->clone());
    }
    sequential& operator=(const sequential& other) {
        if (this != &other) *this = sequential(other);
        return *this;
    }
    sequential(sequential&&) noexcept = default;
    sequential& operator=(sequential&&) noexcept = default;

    /// Appends a layer. throws std::invalid_argument naming this layer and the one before it
    /// when the shapes do not fit. A type that breaks the layer contract is one static_assert.
    template <class L>
    sequential& add(L layer) & {
        if constexpr (check_layer<L>()) {
            if constexpr (std::is_same_v<typename L::value_type, T>) {
                add_checked(std::move(layer));
            } else {
                static_assert(detail::layer_contract::always_false<L>,
                              "advaug: the layer's value_type differs from the model's");
            }
        }
        return *this;
    }
    template <class L>
    sequential&& add(L layer) && {
        add(std::move(layer));
        return std::move(*this);
    }

    std::size_t size() const { return layers_.size(); }
    const std::vector<std::size_t>& input_shape() const { return input_shape_; }
    /// Shape of one sample after layer i.
    const std::vector<std::size_t>& output_shape(std::size_t i) const { return shapes_.at(i); }
    std::string describe() const {
        std::string s = "sequential " + detail::shape_string(input_shape_);
        for (std::size_t i = 0; i < layers_.size(); ++i) s += " -> " + layers_[i]->describe();
        return s;
    }
    /// The i-th layer as its own type. throws std::invalid_argument for another type.
    template <class L>
    L& layer(std::size_t i) {
        auto* holder = dynamic_cast<detail::layer_holder<T, L>*>(layers_.at(i).get());
        if (!holder) detail::invalid("sequential::layer", "layer ", i, " is ", layers_[i]->describe(), ", not the type asked for");
        return *static_cast<L*>(holder->get());
    }

    std::size_t num_classes() const {
        check_complete("sequential::num_classes");
        return shapes_.back()[0];
    }

    /// A ReLU<T, 4> right before a max_pool2d (and after another layer) runs with it as one
    /// layer (max_pool2d::forward_relu and backward_input_relu): the same logits and gradients
    /// bit for bit where the activations are finite, without the ReLU's full-size output and
    /// its forward and backward passes over it.
    void forward(const tensor<T, InputRank>& x, cache_type& cache, tensor<T, 2>& logits) const {
        const std::size_t count = prepare("sequential::forward", x, cache);
        cache.x = &x;
        detail::activation_in<T> in;
        if constexpr (InputRank == 2) in.r2 = &x; else in.r4 = &x;
        for (std::size_t i = 0; i + 1 < count; ++i) {
            if (fused_with_pool(i)) {
                pool_at(i + 1).forward_relu(in.template get<4>(), pool_slot::record(*cache.layers[i + 1]),
                                            cache.outputs[i + 1].r4);
                in = detail::in_of(cache.outputs[++i]);
                continue;
            }
            layers_[i]->forward(in, *cache.layers[i], cache.outputs[i]);
            in = detail::in_of(cache.outputs[i]);
        }
        layers_.back()->forward_into(in, *cache.layers.back(), logits);
    }

    /// The model contract's optional infer(): forward() for a pass no backward pass follows (an
    /// attack's logits-only passes), the same logits bit for bit where the activations are
    /// finite, without the records a backward pass needs where a layer can skip them: a 2-D
    /// max-pool keeps no argmax, and a ReLU right before one runs after it, on a quarter of the
    /// values (max and ReLU commute). The cache keeps no record: backward(), input_gradient()
    /// and features() refuse it until the next forward().
    void infer(const tensor<T, InputRank>& x, cache_type& cache, tensor<T, 2>& logits) const {
        const std::size_t count = prepare("sequential::infer", x, cache);
        cache.x = nullptr;
        detail::activation_in<T> in;
        if constexpr (InputRank == 2) in.r2 = &x; else in.r4 = &x;
        for (std::size_t i = 0; i + 1 < count; ++i) {
            if (relu_pool_[i]) {
                pool_at(i + 1).forward_values(in.template get<4>(), cache.outputs[i + 1].r4, true);
                in = detail::in_of(cache.outputs[++i]);
            } else if (is_pool(i)) {
                pool_at(i).forward_values(in.template get<4>(), cache.outputs[i].r4, false);
                in = detail::in_of(cache.outputs[i]);
            } else {
                layers_[i]->forward(in, *cache.layers[i], cache.outputs[i]);
                in = detail::in_of(cache.outputs[i]);
            }
        }
        layers_.back()->forward_into(in, *cache.layers.back(), logits);
    }

    void input_gradient(cache_type& cache, const tensor<T, 2>& dlogits, tensor<T, InputRank>& dx) const {
        backward(cache, dlogits, &dx, nullptr, T(1));
    }

private:
    using pool_slot = detail::layer_holder<T, max_pool2d<T>>;
    bool is_pool(std::size_t i) const { return dynamic_cast<const pool_slot*>(layers_[i].get()) != nullptr; }
    const max_pool2d<T>& pool_at(std::size_t i) const { return static_cast<const pool_slot*>(layers_[i].get())->layer(); }
    /// Layer i is a ReLU that forward() and backward() run with the max-pool after it; the
    /// first layer is not (its backward pass writes the caller's dx).
    bool fused_with_pool(std::size_t i) const { return i > 0 && relu_pool_[i]; }

    /// Checks x and sizes the cache for a pass; returns the number of layers.
    std::size_t prepare(const char* fn, const tensor<T, InputRank>& x, cache_type& cache) const {
        check_complete(fn);
        if (x.shape()[0] == 0 || !std::equal(input_shape_.begin(), input_shape_.end(), x.shape().begin() + 1)) {
            detail::invalid(fn, "inputs have shape ", detail::shape_string(x.shape()), ", the model expects [N >= 1, ",
                            shape_tail(), "]");
        }
        const std::size_t count = layers_.size();
        if (cache.layers.size() != count) {
            cache.layers.clear();
            for (const auto& l : layers_) cache.layers.push_back(l->make_cache(cache.stream));
            cache.outputs.resize(count - 1);
            cache.deltas.resize(count - 1);
            cache.scaled.resize(count);
        }
        return count;
    }

public:
    /// The penultimate features of the last forward(): the input of the last layer, [N, F]
    /// (the model contract's optional feature_classifier member).
    /// throws: std::invalid_argument for a model of one layer, or one whose last layer takes
    ///         samples of rank above 1, and for a cache forward() did not fill.
    const tensor<T, 2>& features(const cache_type& cache) const {
        const char* fn = "sequential::features";
        check_features(fn, cache);
        return cache.outputs[layers_.size() - 2].r2;
    }

    /// dx = d/dx (<dlogits, logits> + <dfeatures, features(cache)>); nothing else changes.
    void input_gradient_with_features(cache_type& cache, const tensor<T, 2>& dlogits, const tensor<T, 2>& dfeatures,
                                      tensor<T, InputRank>& dx) const {
        const char* fn = "sequential::input_gradient_with_features";
        check_features(fn, cache);
        const auto& f = cache.outputs[layers_.size() - 2].r2;
        if (dfeatures.shape() != f.shape()) {
            detail::invalid(fn, "dfeatures has shape ", detail::shape_string(dfeatures.shape()),
                            ", the features have ", detail::shape_string(f.shape()));
        }
        backward(cache, dlogits, &dx, nullptr, T(1), &dfeatures);
    }

    void parameter_gradient(cache_type& cache, const tensor<T, 2>& dlogits) {
        backward(cache, dlogits, nullptr, this, T(1));
    }

    /// input_gradient(cache, dlogits, dx) and parameter_gradient(cache, scale * dlogits) in one
    /// backward pass: both are vector-Jacobian products of the same dlogits, so the deltas of
    /// every layer are computed once. A trainer whose attack starts at the clean batch (the
    /// seed's FGSM) gets its input gradient and the clean half's (1 - alpha) share of the
    /// parameter gradient from one pass instead of two.
    /// ensures: dx as input_gradient(); every parameter gradient is incremented by scale times
    ///          what parameter_gradient(cache, dlogits) would add (up to rounding).
    void input_and_parameter_gradient(cache_type& cache, const tensor<T, 2>& dlogits,
                                      tensor<T, InputRank>& dx, T scale) {
        backward(cache, dlogits, &dx, this, scale);
    }

    /// The model contract's rows_per_pass(): how many samples' layer outputs and their
    /// gradients fit in pass_bytes (at least 1). The bundled CNN's take 702 KB a sample, so its
    /// attacks run in passes of 11 rows; an MLP 784-256-256-10's take 8 KB, so its batches of
    /// up to 1,000 rows stay whole.
    std::size_t rows_per_pass() const {
        std::size_t floats = 0;
        for (const auto& shape : shapes_) {
            std::size_t size = 1;
            for (auto d : shape) size *= d;
            floats += size;
        }
        const std::size_t per_sample = 2 * sizeof(T) * std::max<std::size_t>(floats, 1);
        return std::max<std::size_t>(1, pass_bytes / per_sample);
    }

    /// The layer outputs and gradients of one pass of an attack (rows_per_pass()): 8 MiB, the
    /// fastest of 1, 2, 4, 6, 8, 12 and 32 MiB for the bundled CNN's APGD on 1,000 images
    /// (docs/benchmarks.md, "Attacks in passes").
    static constexpr std::size_t pass_bytes = std::size_t(8) << 20;

    /// True when every layer declares that its forward() is the same in train and eval mode
    /// (no batch norm, no dropout, no user layer without the declaration). A trainer may then
    /// reuse one forward pass for the attack and for the clean loss.
    bool is_mode_independent() const {
        return std::all_of(layers_.begin(), layers_.end(), [](const auto& l) { return l->mode_independent(); });
    }

    void zero_grad() {
        for (auto& l : layers_) l->zero_grad();
    }

    std::vector<parameter_view<T>> parameters() {
        std::vector<parameter_view<T>> out;
        for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->append_parameters(out, std::to_string(i) + ".");
        return out;
    }

    /// Everything a model file holds: the parameters, then buffers such as batch norm's
    /// running statistics (views with an empty gradient), named like torch's state_dict.
    std::vector<parameter_view<T>> state() {
        auto out = parameters();
        for (std::size_t i = 0; i < layers_.size(); ++i) layers_[i]->append_buffers(out, std::to_string(i) + ".");
        return out;
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) {
        mode_ = m;
        for (auto& l : layers_) l->set_mode(m);
    }

private:
    template <class L>
    void add_checked(L layer) {
        auto slot = std::make_unique<detail::layer_holder<T, L>>(std::move(layer));
        const std::vector<std::size_t>& in = shapes_.empty() ? input_shape_ : shapes_.back();
        const std::string previous =
            layers_.empty() ? std::string("the input") : concat_index(layers_.size() - 1, layers_.back()->describe());
        const std::string current = concat_index(layers_.size(), slot->describe());
        if (slot->input_rank() != in.size() + 1) {
            detail::invalid("sequential::add", current, " takes rank-", slot->input_rank(), " input, but ", previous,
                            " gives samples of shape ", detail::shape_string(in), " (rank ", in.size() + 1, ")");
        }
        std::vector<std::size_t> out;
        try {
            out = slot->output_shape(in);
        } catch (const std::invalid_argument& e) {
            detail::invalid("sequential::add", current, " does not fit after ", previous, ", which gives samples of shape ",
                            detail::shape_string(in), ": ", e.what());
        }
        slot->set_mode(mode_);
        layers_.push_back(std::move(slot));
        shapes_.push_back(std::move(out));
        relu_pool_.push_back(0);
        if constexpr (std::is_same_v<L, max_pool2d<T>>) {
            const std::size_t i = layers_.size() - 1;
            using relu_slot = detail::layer_holder<T, relu<T, 4>>;
            if (i > 0 && dynamic_cast<const relu_slot*>(layers_[i - 1].get())) relu_pool_[i - 1] = 1;
        }
    }

    static std::string concat_index(std::size_t i, const std::string& what) {
        return "layer " + std::to_string(i) + " " + what;
    }
    std::string shape_tail() const {
        std::string s = detail::shape_string(input_shape_);
        return s.substr(1, s.size() - 2);
    }
    void check_complete(const char* fn) const {
        if (layers_.empty() || shapes_.back().size() != 1) {
            detail::invalid(fn, "the model must end in a layer with [N, classes] output; it ends in ",
                            layers_.empty() ? std::string("no layer") : layers_.back()->describe() + " with samples of shape " +
                                                                         detail::shape_string(shapes_.back()));
        }
    }

    void check_features(const char* fn, const cache_type& cache) const {
        const std::size_t count = layers_.size();
        if (count < 2) detail::invalid(fn, "the model has ", count, " layer; features are the input of the last of 2 or more");
        if (shapes_[count - 2].size() != 1) {
            detail::invalid(fn, "the last layer takes samples of shape ", detail::shape_string(shapes_[count - 2]),
                            "; features must be flat (end the model in flatten, dense)");
        }
        if (cache.layers.size() != count || cache.x == nullptr) {
            detail::invalid(fn, "the cache was not filled by forward() of this model");
        }
    }

    // With `dfeatures`, it is added to the gradient reaching the last layer's input.
    void backward(cache_type& cache, const tensor<T, 2>& dlogits, tensor<T, InputRank>* dx, sequential* trainee,
                  T scale, const tensor<T, 2>* dfeatures = nullptr) const {
        const std::size_t count = layers_.size();
        if (cache.layers.size() != count || cache.x == nullptr) {
            detail::invalid("sequential::backward", "the cache was not filled by forward() of this model");
        }
        detail::activation_in<T> grad{&dlogits, nullptr};
        for (std::size_t i = count; i-- > 0;) {
            if (trainee) trainee->layers_[i]->accumulate_gradient(*cache.layers[i], grad, scale, cache.scaled[i]);
            if (i == 0) {
                if (dx) {
                    detail::activation<T> tmp;
                    // write straight into dx: swap its storage in and out of an activation
                    std::swap(tmp.template get<InputRank>(), *dx);
                    layers_[0]->backward_input(*cache.layers[0], grad, tmp);
                    std::swap(tmp.template get<InputRank>(), *dx);
                }
                break;
            }
            if (fused_with_pool(i - 1)) {  // the pool and the ReLU before it: i - 1 >= 1
                auto& next = cache.deltas[i - 2];
                pool_at(i).backward_input_relu(pool_slot::record(*cache.layers[i]), cache.outputs[i].r4,
                                               grad.template get<4>(), next.r4);
                grad = detail::in_of(next);
                --i;  // the ReLU has no parameters
                continue;
            }
            auto& next = cache.deltas[i - 1];
            layers_[i]->backward_input(*cache.layers[i], grad, next);
            if (dfeatures && i + 1 == count) next.r2 += *dfeatures;
            grad = detail::in_of(next);
        }
    }
    std::vector<std::size_t> input_shape_;
    std::vector<std::unique_ptr<detail::layer_slot<T>>> layers_;
    std::vector<std::vector<std::size_t>> shapes_;
    std::vector<char> relu_pool_;  // per layer: a relu<T, 4> with a max_pool2d<T> after it
    advaug::mode mode_ = advaug::mode::train;
};

}  // namespace advaug
