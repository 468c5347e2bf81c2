// custom_layer.cpp: your own layer in a sequential model, trained adversarially.
//
// advaug's layers are plain types with a handful of members (the layer contract,
// advaug/layers/layer.hpp, explained in docs/layers.md); sequential<T, rank> composes any of
// them, bundled or yours, with no registration and no base class. This program
//
//   1. writes a layer that advaug does not have: a learnable per-feature scale, y = x * s;
//   2. checks its gradients with advaug's finite-difference checker, as every bundled layer is;
//   3. builds dense(784->128) -> scale -> relu -> dense(128->10) and sees the shapes checked;
//   4. trains it for one epoch on 10,000 Fashion-MNIST images with FGSM with random start and
//      reports clean and PGD-20 accuracy on 2,000 test images.
//
//   custom_layer [--data DIR]

#include <advaug/advaug.hpp>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

namespace {

// ---------------------------------------------------------------------------------------------
// 1. The layer
// ---------------------------------------------------------------------------------------------

// y[n, f] = x[n, f] * scale[f]. A layer that forgets a required member, or gets one wrong, is
// refused by sequential::add with one static_assert that names the member.
template <class T>
class feature_scale {
public:
    using value_type = T;
    static constexpr std::size_t input_rank = 2;   // [N, features] in
    static constexpr std::size_t output_rank = 2;  // [N, features] out

    // The optional members this layer has (output_shape and describe, below). sequential checks
    // the list against the members: a misspelled or mis-typed optional member, or one that is
    // not listed, is a compile error rather than a silent fallback to the default.
    static constexpr advaug::optional_member optional_members =
        advaug::optional_member::output_shape | advaug::optional_member::describe;

    // What backward needs from forward. The input is not copied: sequential keeps it alive.
    struct cache_type {
        const advaug::tensor<T, 2>* x = nullptr;
    };

    explicit feature_scale(std::size_t features)
        : scale_(advaug::tensor<T, 1>::from_shape({features})),
          grad_(advaug::tensor<T, 1>::from_shape({features})) {
        scale_.fill(T(1));
        grad_.fill(T(0));
    }

    // Optional members, listed above: sequential uses them to check shapes and to name the layer
    // in messages. Without output_shape a layer must keep the shape; without describe, its name
    // is "layer".
    std::vector<std::size_t> output_shape(const std::vector<std::size_t>& in) const {
        if (in.size() != 1 || in[0] != scale_.size()) {
            throw std::invalid_argument("feature_scale: expects [" + std::to_string(scale_.size()) + "] samples");
        }
        return in;
    }
    std::string describe() const { return "feature_scale(" + std::to_string(scale_.size()) + ")"; }

    // forward is const: an attack may call it between two optimizer steps without changing anything.
    void forward(const advaug::tensor<T, 2>& x, cache_type& cache, advaug::tensor<T, 2>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());  // resize only when needed: no allocation
        const std::size_t f = scale_.size();
        for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = x.data()[i] * scale_(i % f);
        cache.x = &x;
    }
    // dL/dx = dL/dy * scale
    void backward_input(const cache_type&, const advaug::tensor<T, 2>& dy, advaug::tensor<T, 2>& dx) const {
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        const std::size_t f = scale_.size();
        for (std::size_t i = 0; i < dy.size(); ++i) dx.data()[i] = dy.data()[i] * scale_(i % f);
    }
    // dL/dscale += sum over the batch of dL/dy * x: gradients accumulate, the trainer zeroes them.
    void accumulate_gradient(const cache_type& cache, const advaug::tensor<T, 2>& dy) {
        const std::size_t f = scale_.size();
        for (std::size_t i = 0; i < dy.size(); ++i) grad_(i % f) += dy.data()[i] * cache.x->data()[i];
    }
    void zero_grad() { grad_.fill(T(0)); }

    // The optimizer sees the parameter through views of this storage, which must never be
    // reallocated (update it in place, never `scale_ = ...`).
    std::vector<advaug::parameter_view<T>> parameters() {
        return {{"scale", {scale_.size()}, {scale_.data(), scale_.size()}, {grad_.data(), grad_.size()}}};
    }

    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }

private:
    advaug::tensor<T, 1> scale_, grad_;
    advaug::mode mode_ = advaug::mode::train;
};

int run(const std::string& data_dir) {
    // -----------------------------------------------------------------------------------------
    // 2. Check the layer's gradients in double precision, as the tests do for every layer.
    // -----------------------------------------------------------------------------------------
    feature_scale<double> probe(6);
    probe.parameters()[0].value[2] = 0.5;  // not all ones, so the check sees a real scale
    auto x = advaug::tensor<double, 2>::from_shape({4, 6});
    advaug::rng gen(1);
    for (auto& v : x) v = gen.uniform(-1, 1);
    const auto in = advaug::check_layer_input_gradient(probe, x);
    const auto par = advaug::check_layer_parameter_gradient(probe, x);
    std::printf("gradient check: input %.1e, parameters %.1e (relative error)\n", in.relative_error,
                par.relative_error);
    if (!in.passed(1e-6) || !par.passed(1e-6)) {
        std::fprintf(stderr, "custom_layer: the layer's gradients are wrong\n");
        return 1;
    }

    // -----------------------------------------------------------------------------------------
    // 3. Compose it with bundled layers. Shapes are checked as layers are added.
    // -----------------------------------------------------------------------------------------
    advaug::rng init(2);
    using init_kind = advaug::weight_init;
    auto net = advaug::sequential<float, 2>({784})
                   .add(advaug::dense<float>(784, 128, init, init_kind::pytorch_default))
                   .add(feature_scale<float>(128))
                   .add(advaug::relu<float, 2>{})
                   .add(advaug::dense<float>(128, 10, init, init_kind::pytorch_default));
    std::printf("model: %s\n", net.describe().c_str());
    try {
        auto wrong = advaug::sequential<float, 2>({784}).add(advaug::dense<float>(784, 64, init));
        wrong.add(feature_scale<float>(128));
    } catch (const std::invalid_argument& e) {
        std::printf("a layer that does not fit is refused:\n  %s\n", e.what());
    }

    // -----------------------------------------------------------------------------------------
    // 4. Train adversarially and measure.
    // -----------------------------------------------------------------------------------------
    const auto data = advaug::load_fashion_mnist(data_dir);
    using byte_dataset = advaug::dataset<std::uint8_t>;
    const byte_dataset all_train = byte_dataset::from_images(data.train_images, data.train_labels, 10, false);
    const byte_dataset all_test = byte_dataset::from_images(data.test_images, data.test_labels, 10, false);
    std::vector<std::size_t> first(10'000);
    for (std::size_t i = 0; i < first.size(); ++i) first[i] = i;
    const byte_dataset train = all_train.subset(first);
    first.resize(2'000);
    const byte_dataset test = all_test.subset(first);

    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    auto options = advaug::train_options{}
                       .method(advaug::training_method::fgsm_rs)
                       .epsilon(0.1)
                       .learning_rate(advaug::lr_schedule::constant(0.05))
                       .epochs(1)
                       .log_every(20);
    advaug::trainer trainer(net, optimizer, options);
    trainer.fit(train);

    const double clean = advaug::accuracy(net, test);
    const double robust = advaug::robust_accuracy(net, test, [](const auto& m, const auto& xb, const auto& yb) {
        return advaug::pgd(m, xb, yb, advaug::pgd_options{}.epsilon(0.1).steps(20));
    });
    std::printf("after one epoch: clean %.2f%%, PGD-20 at eps 0.1 %.2f%% (2,000 test images)\n", 100 * clean,
                100 * robust);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string data_dir = advaug::default_fashion_mnist_dir();
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--data") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
        } else {
            std::fprintf(stderr, "usage: custom_layer [--data DIR]\n");
            return 2;
        }
    }
    try {
        return run(data_dir);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "custom_layer: %s\n", e.what());
        return 1;
    }
}
