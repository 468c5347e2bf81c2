#include <doctest/doctest.h>

#include "support/models.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_sequential {

using namespace advaug;

namespace {
// A user's own layer, added without registration: y = scale * x, one parameter.
template <class T>
struct scale_layer {
    using value_type = T;
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    struct cache_type {
        const tensor<T, 2>* x = nullptr;
    };
    T scale = T(1.5), grad = T(0);
    void forward(const tensor<T, 2>& x, cache_type& c, tensor<T, 2>& y) const {
        if (y.shape() != x.shape()) y.resize(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = scale * x.data()[i];
        c.x = &x;
    }
    void backward_input(const cache_type& c, const tensor<T, 2>& dy, tensor<T, 2>& dx) const {
        if (dx.shape() != dy.shape()) dx.resize(dy.shape());
        for (std::size_t i = 0; i < dy.size(); ++i) dx.data()[i] = scale * dy.data()[i];
        (void)c;
    }
    void accumulate_gradient(const cache_type& c, const tensor<T, 2>& dy) {
        for (std::size_t i = 0; i < dy.size(); ++i) grad += dy.data()[i] * c.x->data()[i];
    }
    void zero_grad() { grad = 0; }
    std::vector<parameter_view<T>> parameters() { return {{"scale", {1}, {&scale, 1}, {&grad, 1}}}; }
    advaug::mode mode() const { return advaug::mode::train; }
    void set_mode(advaug::mode) {}
};

// ReLU under another type: sequential runs it on its own, not with a max-pool after it.
template <class T>
struct unfused_relu : relu<T, 4> {};
}  // namespace

TEST_CASE("a user's own layer plugs into sequential and passes the gradient checks") {
    rng gen(1);
    auto net = sequential<double, 2>({5})
                   .add(dense<double>(5, 8, gen))
                   .add(relu<double, 2>{})
                   .add(scale_layer<double>{})
                   .add(dense<double>(8, 3, gen));
    static_assert(trainable_classifier<sequential<double, 2>>);
    CHECK(net.size() == 4);
    CHECK(net.num_classes() == 3);
    const auto names = [&] {
        std::vector<std::string> n;
        for (auto& p : net.parameters()) n.push_back(p.name);
        return n;
    }();
    CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.scale", "3.weight", "3.bias"});
    const auto x = testing::uniform_batch<double>(4, 5, 2);
    CHECK(check_input_gradient(net, x).relative_error < 1e-6);
    const auto r = check_parameter_gradient(net, x);
    CHECK(r.checked == 5 * 8 + 8 + 1 + 8 * 3 + 3);
    CHECK(r.relative_error < 1e-6);
    // the layer is reachable as its own type
    CHECK(net.layer<scale_layer<double>>(2).scale == 1.5);
    CHECK_THROWS_WITH_AS(net.layer<scale_layer<double>>(0),
                         "sequential::layer(): layer 0 is dense(5->8), not the type asked for", std::invalid_argument);
}

TEST_CASE("a layer that does not fit is refused when added, naming both layers and the shapes") {
    rng gen(1);
    auto net = sequential<float, 2>({784});
    net.add(dense<float>(784, 128, gen)).add(relu<float, 2>{});
    CHECK_THROWS_WITH_AS(net.add(dense<float>(100, 10, gen)),
                         "sequential::add(): layer 2 dense(100->10) does not fit after layer 1 relu, which gives "
                         "samples of shape [128]: dense::output_shape(): dense(100->10) expects samples of shape "
                         "[100], got [128]",
                         std::invalid_argument);
    CHECK(net.size() == 2);  // nothing was added
    auto image_model = [&] { sequential<float, 4>({1, 28, 28}).add(dense<float>(784, 10, gen)); };
    CHECK_THROWS_WITH_AS(image_model(),
                         "sequential::add(): layer 0 dense(784->10) takes rank-2 input, but the input gives samples "
                         "of shape [1, 28, 28] (rank 4)",
                         std::invalid_argument);
    auto wrong_rank = [] { sequential<float, 2> s({3, 4}); };
    CHECK_THROWS_WITH_AS(wrong_rank(), "sequential(): a rank-2 model needs a sample shape of 1 entries, got [3, 4]",
                         std::invalid_argument);
}

TEST_CASE("an unfinished model and inputs of the wrong shape are refused") {
    rng gen(1);
    auto net = sequential<float, 2>({6});
    CHECK_THROWS_WITH_AS(net.num_classes(),
                         "sequential::num_classes(): the model must end in a layer with [N, classes] output; it ends "
                         "in no layer",
                         std::invalid_argument);
    net.add(dense<float>(6, 3, gen));
    typename sequential<float, 2>::cache_type c;
    tensor<float, 2> logits;
    CHECK_THROWS_WITH_AS(net.forward(tensor<float, 2>::from_shape({2, 5}), c, logits),
                         "sequential::forward(): inputs have shape [2, 5], the model expects [N >= 1, 6]",
                         std::invalid_argument);
}

TEST_CASE("copies are deep and modes reach every layer") {
    mlp<float> a({4, 6, 3}, 1);
    sequential<float, 2> b = a;
    b.parameters()[0].value[0] += 1.0f;
    CHECK(a.parameters()[0].value[0] != b.parameters()[0].value[0]);
    a.set_mode(mode::eval);
    CHECK(a.mode() == mode::eval);
    CHECK(a.describe() == "sequential [4] -> dense(4->6) -> relu -> dense(6->3)");
}

TEST_CASE("input_and_parameter_gradient is input_gradient plus scale times parameter_gradient") {
    // The user's scale_layer has no scaled accumulate_gradient: sequential scales dy for it.
    rng gen(4);
    auto net = sequential<double, 4>({1, 6, 6})
                   .add(conv2d<double>(1, 3, 3, gen, conv2d_options{}.padding(1)))
                   .add(relu<double, 4>{})
                   .add(max_pool2d<double>(2))
                   .add(flatten<double>{})
                   .add(dense<double>(27, 5, gen))
                   .add(relu<double, 2>{})
                   .add(scale_layer<double>{})
                   .add(dense<double>(5, 3, gen));
    tensor<double, 4> x = tensor<double, 4>::from_shape({4, 1, 6, 6});
    for (auto& v : x) v = gen.uniform(0.1, 0.9);
    const auto y = testing::cyclic_labels(4, 3);
    sequential<double, 4>::cache_type cache;
    tensor<double, 2> logits, dlogits;
    tensor<double, 4> dx_separate, dx_combined;
    net.forward(x, cache, logits);
    cross_entropy_gradient(logits, y, dlogits);

    net.zero_grad();
    net.input_gradient(cache, dlogits, dx_separate);
    net.parameter_gradient(cache, dlogits);
    std::vector<double> separate;
    for (auto& p : net.parameters()) separate.insert(separate.end(), p.grad.begin(), p.grad.end());

    const double scale = 0.3;
    net.zero_grad();
    net.input_and_parameter_gradient(cache, dlogits, dx_combined, scale);
    CHECK(testing::max_abs_diff(dx_separate, dx_combined) == 0.0);  // the same products
    std::size_t i = 0, nonzero = 0;
    for (auto& p : net.parameters()) {
        for (double g : p.grad) {
            CHECK(g == doctest::Approx(scale * separate[i]).epsilon(1e-12));
            nonzero += separate[i] != 0.0;
            ++i;
        }
    }
    CHECK(nonzero > i / 2);  // not a comparison of zeros
}

TEST_CASE_TEMPLATE("infer() gives forward()'s logits bit for bit and leaves no record for a backward pass", T, float,
                   double) {
    // ReLU then 2 x 2 max-pool (fused: the pool first), a max-pool alone, a 3 x 3 max-pool of
    // stride 1 (the general window) and a ReLU before a flatten (not fused).
    rng gen(3);
    sequential<T, 4> net({2, 12, 12});
    net.add(conv2d<T>(2, 3, 3, gen, conv2d_options{}.padding(1)))
        .add(relu<T, 4>{})
        .add(max_pool2d<T>(2))
        .add(conv2d<T>(3, 4, 3, gen, conv2d_options{}.padding(1)))
        .add(max_pool2d<T>(2))
        .add(max_pool2d<T>(3, 1))
        .add(relu<T, 4>{})
        .add(flatten<T>{})
        .add(dense<T>(4 * 1 * 1, 5, gen));
    net.set_mode(mode::eval);
    auto x = tensor<T, 4>::from_shape({7, 2, 12, 12});
    rng draw(5);
    for (auto& v : x) v = static_cast<T>(draw.uniform() * 2 - 1);  // negative values too
    typename sequential<T, 4>::cache_type with_record, without;
    tensor<T, 2> a, b;
    net.forward(x, with_record, a);
    net.infer(x, without, b);
    REQUIRE(a.shape() == b.shape());
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
    // And again on the same cache, after a forward() on it.
    net.forward(x, without, a);
    net.infer(x, without, b);
    CHECK(std::equal(a.begin(), a.end(), b.begin()));

    tensor<T, 4> dx;
    CHECK_THROWS_WITH_AS(net.input_gradient(without, a, dx),
                         "sequential::backward(): the cache was not filled by forward() of this model",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(net.infer(tensor<T, 4>::from_shape({1, 2, 12, 11}), without, b),
                         "sequential::infer(): inputs have shape [1, 2, 12, 11], the model expects [N >= 1, 2, 12, 12]",
                         std::invalid_argument);
    // The bundled CNN too.
    cnn<T> c(4);
    c.set_mode(mode::eval);
    auto images = tensor<T, 4>::from_shape({3, 1, 28, 28});
    for (auto& v : images) v = static_cast<T>(draw.uniform());
    typename cnn<T>::cache_type cache;
    c.forward(images, cache, a);
    c.infer(images, cache, b);
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
}

TEST_CASE_TEMPLATE("a ReLU before a max-pool runs with it: the logits and all gradients of the layers run one by one",
                   T, float, double) {
    // A ReLU first (not fused: its backward pass writes dx), then conv-ReLU-pool with the 2 x 2
    // window and with an overlapping 3 x 3 window of stride 1.
    const auto build = [](auto act) {
        rng gen(11);
        sequential<T, 4> net({2, 10, 10});
        net.add(decltype(act){})
            .add(max_pool2d<T>(2, 1))
            .add(conv2d<T>(2, 3, 3, gen, conv2d_options{}.padding(1)))
            .add(decltype(act){})
            .add(max_pool2d<T>(2))
            .add(conv2d<T>(3, 4, 3, gen, conv2d_options{}.padding(1)))
            .add(decltype(act){})
            .add(max_pool2d<T>(3, 1))
            .add(flatten<T>{})
            .add(dense<T>(4 * 2 * 2, 5, gen));
        return net;
    };
    auto fused = build(relu<T, 4>{});
    auto split = build(unfused_relu<T>{});
    auto x = tensor<T, 4>::from_shape({6, 2, 10, 10});
    rng draw(8);
    for (auto& v : x) v = static_cast<T>(draw.uniform() * 2 - 1);
    typename sequential<T, 4>::cache_type fused_cache, split_cache;
    tensor<T, 2> a, b;
    fused.forward(x, fused_cache, a);
    split.forward(x, split_cache, b);
    REQUIRE(a.shape() == b.shape());
    CHECK(std::equal(a.begin(), a.end(), b.begin()));

    auto dlogits = tensor<T, 2>::from_shape(a.shape());
    for (auto& v : dlogits) v = static_cast<T>(draw.uniform() * 2 - 1);
    tensor<T, 4> dx_fused, dx_split;
    fused.input_gradient(fused_cache, dlogits, dx_fused);
    split.input_gradient(split_cache, dlogits, dx_split);
    CHECK(std::equal(dx_fused.begin(), dx_fused.end(), dx_split.begin(), dx_split.end()));
    CHECK(std::any_of(dx_fused.begin(), dx_fused.end(), [](T v) { return v != T(0); }));

    fused.zero_grad();
    split.zero_grad();
    fused.input_and_parameter_gradient(fused_cache, dlogits, dx_fused, T(0.5));
    split.input_and_parameter_gradient(split_cache, dlogits, dx_split, T(0.5));
    CHECK(std::equal(dx_fused.begin(), dx_fused.end(), dx_split.begin(), dx_split.end()));
    const auto pf = fused.parameters(), ps = split.parameters();
    REQUIRE(pf.size() == ps.size());
    for (std::size_t i = 0; i < pf.size(); ++i) {
        CAPTURE(pf[i].name);
        CHECK(std::equal(pf[i].grad.begin(), pf[i].grad.end(), ps[i].grad.begin(), ps[i].grad.end()));
    }
}

TEST_CASE("a model is mode-independent when every layer says so") {
    CHECK(cnn<float>(1).is_mode_independent());
    CHECK_FALSE(cnn<float>(1, weight_init::he_normal, true).is_mode_independent());  // batch norm
    rng gen(1);
    auto with_dropout = sequential<float, 2>({4}).add(dense<float>(4, 4, gen)).add(dropout<float, 2>(0.5, 1))
                            .add(dense<float>(4, 2, gen));
    CHECK_FALSE(with_dropout.is_mode_independent());
    // a user's layer that does not declare it is assumed to depend on the mode
    auto with_user_layer = sequential<float, 2>({4}).add(scale_layer<float>{}).add(dense<float>(4, 2, gen));
    CHECK_FALSE(with_user_layer.is_mode_independent());
    CHECK(sequential<float, 2>({4}).add(dense<float>(4, 2, gen)).is_mode_independent());
}

}  // namespace test_sequential
