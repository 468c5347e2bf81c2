// The layer contract (layers/layer.hpp), its static checks (layers/static_checks.hpp) and
// parameterless_layer (layers/parameterless.hpp). The refusals themselves, one error each, are
// in tests/compile_fail/layer_*.cpp.
#include <doctest/doctest.h>

#include <advaug/advaug.hpp>
#include <cstdint>
#include <string>
#include <vector>

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_layer {

using namespace advaug;
namespace lc = advaug::detail::layer_contract;

// Every bundled layer follows the contract and lists exactly the optional members it has.
static_assert(check_layer<dense<float>>() && check_layer<dense<double>>());
static_assert(check_layer<conv2d<float>>());
static_assert(check_layer<batch_norm<float, 2>>() && check_layer<batch_norm<double, 4>>());
static_assert(check_layer<dropout<float, 2>>() && check_layer<dropout<float, 4>>());
static_assert(check_layer<flatten<float>>());
static_assert(check_layer<max_pool2d<float>>() && check_layer<avg_pool2d<double>>());
static_assert(check_layer<relu<float, 2>>() && check_layer<relu<double, 4>>());
static_assert(check_layer<leaky_relu<float, 4>>() && check_layer<tanh_layer<double, 2>>());
static_assert(layer<dense<float>> && layer<relu<float, 4>> && layer<dropout<double, 2>>);

// Only the layers whose forward() is the same in both modes say so.
static_assert(lc::has_mode_independent<relu<float, 2>> && lc::has_mode_independent<dense<float>>);
static_assert(!lc::has_mode_independent<dropout<float, 2>>);
static_assert(!lc::has_mode_independent<batch_norm<float, 2>>);

namespace {

using X = tensor<float, 2>;

// The smallest layer: the required members and nothing else.
struct identity {
    using value_type = float;
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    struct cache_type {};
    void forward(const X& x, cache_type&, X& y) const { y = x; }
    void backward_input(const cache_type&, const X& dy, X& dx) const { dx = dy; }
    void accumulate_gradient(const cache_type&, const X&) {}
    void zero_grad() {}
    std::vector<parameter_view<float>> parameters() { return {}; }
    advaug::mode mode() const { return mode_; }
    void set_mode(advaug::mode m) { mode_ = m; }
    advaug::mode mode_ = advaug::mode::train;
};

// Each required member, removed once: the concept names it on its own.
struct no_zero_grad : identity {
    void zero_grad() = delete;
};
struct wrong_parameters : identity {
    std::vector<parameter_view<double>> parameters() { return {}; }
};
struct non_const_forward : identity {
    void forward(const X& x, cache_type&, X& y) { y = x; }
};

// The probes see a name whatever it is: overloads, templates, data, private, inherited.
struct overloaded_describe : identity {
    std::string describe() const { return "a"; }
    std::string describe(int) const { return "b"; }
};
struct template_output_shape : identity {
    template <class S>
    S output_shape(const S& s) const {
        return s;
    }
};
struct data_describe : identity {
    const char* describe = "not a function";
};
class private_buffers : public identity {
    void append_buffers(std::vector<parameter_view<float>>&, const std::string&) {}
};
struct inherited_buffers : private_buffers {};
struct wrong_buffers : identity {
    void append_buffers(std::vector<parameter_view<float>>&) {}
};
struct int_mode_independent : identity {
    static constexpr int mode_independent = 1;
};
struct unsigned_list : identity {
    static constexpr unsigned optional_members = 2;
};

// Listed optional members: sequential uses exactly these.
struct with_buffer : identity {
    static constexpr optional_member optional_members =
        optional_member::describe | optional_member::append_buffers | optional_member::cache_stream;
    struct cache_type {
        std::uint64_t stream = 0;
    };
    void forward(const X& x, cache_type& c, X& y) const {
        y = x;
        last_stream = c.stream;
    }
    void backward_input(const cache_type&, const X& dy, X& dx) const { dx = dy; }
    void accumulate_gradient(const cache_type&, const X&) {}
    std::string describe() const { return "with_buffer"; }
    void append_buffers(std::vector<parameter_view<float>>& out, const std::string& prefix) {
        out.push_back({prefix + "count", {1}, {&count, 1}, {}});
    }
    float count = 3;
    mutable std::uint64_t last_stream = 0;
};

// A parameterless layer through the base: only what it computes.
template <class T>
struct negate : parameterless_layer<T> {
    using value_type = T;
    static constexpr std::size_t input_rank = 2, output_rank = 2;
    struct cache_type {};
    void forward(const tensor<T, 2>& x, cache_type&, tensor<T, 2>& y) const {
        y = tensor<T, 2>::from_shape(x.shape());
        for (std::size_t i = 0; i < x.size(); ++i) y.data()[i] = -x.data()[i];
    }
    void backward_input(const cache_type&, const tensor<T, 2>& dy, tensor<T, 2>& dx) const {
        dx = tensor<T, 2>::from_shape(dy.shape());
        for (std::size_t i = 0; i < dy.size(); ++i) dx.data()[i] = -dy.data()[i];
    }
};

}  // namespace

static_assert(check_layer<identity>() && check_layer<with_buffer>() &&
              check_layer<negate<float>>());
static_assert(!lc::has_zero_grad<no_zero_grad> && !layer<no_zero_grad>);
static_assert(!lc::has_parameters<wrong_parameters> && !layer<wrong_parameters>);
static_assert(!lc::has_forward<non_const_forward> && !layer<non_const_forward>);

static_assert(!lc::names_describe<identity> && !lc::names_append_buffers<identity>);
static_assert(lc::names_describe<overloaded_describe>);
static_assert(lc::names_output_shape<template_output_shape> &&
              lc::has_output_shape<template_output_shape>);
static_assert(lc::names_describe<data_describe> && !lc::has_describe<data_describe>);
static_assert(lc::names_append_buffers<private_buffers> &&
              !lc::has_append_buffers<private_buffers>);
static_assert(lc::names_append_buffers<inherited_buffers>);
static_assert(lc::names_append_buffers<wrong_buffers> && !lc::has_append_buffers<wrong_buffers>);
static_assert(lc::names_mode_independent<int_mode_independent> &&
              !lc::has_mode_independent<int_mode_independent>);
static_assert(lc::names_optional_members<unsigned_list> &&
              !lc::has_optional_members<unsigned_list>);
static_assert(lc::names_stream<with_buffer::cache_type> && lc::has_cache_stream<with_buffer>);

static_assert(lc::declared<identity>() == optional_member::none);
static_assert(lc::declares_append_buffers<with_buffer> && !lc::declares_output_shape<with_buffer>);
static_assert(lc::declares_cache_stream<dropout<float, 2>> &&
              lc::declares_append_buffers<batch_norm<float, 2>>);

TEST_CASE("sequential uses the optional members a layer lists, and defaults for the others") {
    auto net = sequential<float, 2>({3}).add(identity{}).add(with_buffer{});
    CHECK(net.describe() == "sequential [3] -> layer -> with_buffer");
    // The buffer is saved with the state, never offered to an optimizer.
    CHECK(net.parameters().empty());
    const auto state = net.state();
    REQUIRE(state.size() == 1);
    CHECK(state[0].name == "1.count");
    CHECK(state[0].value[0] == 3);
    CHECK(state[0].grad.empty());

    // The model cache's stream reaches the layer cache.
    sequential<float, 2>::cache_type cache;
    cache.stream = 42;
    tensor<float, 2> logits;
    net.forward(tensor<float, 2>::from_shape({2, 3}), cache, logits);
    CHECK(net.layer<with_buffer>(1).last_stream == 42);
}

TEST_CASE_TEMPLATE("parameterless_layer: no parameters, a mode, and the gradient checks pass", T,
                   float, double) {
    negate<T> layer;
    CHECK(layer.parameters().empty());
    CHECK(layer.mode() == advaug::mode::train);
    layer.set_mode(advaug::mode::eval);
    CHECK(layer.mode() == advaug::mode::eval);
    typename negate<T>::cache_type c;
    const auto dy = tensor<T, 2>::from_shape({2, 3});
    layer.accumulate_gradient(c, dy);
    layer.accumulate_gradient(c, dy, T(0.5));
    layer.zero_grad();
    static_assert(lc::has_scaled_accumulate_gradient<negate<T>>);

    auto x = tensor<T, 2>::from_shape({2, 3});
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = static_cast<T>(i) - T(2.5);
    const auto opts = gradient_check_options().step(std::is_same_v<T, double> ? 1e-6 : 1e-2);
    CHECK(check_layer_input_gradient(layer, x, opts).relative_error < 1e-6);

    // In a model, set_mode reaches the base's mode.
    rng gen(1);
    auto net = sequential<T, 2>({3}).add(negate<T>{}).add(dense<T>(3, 2, gen));
    net.set_mode(advaug::mode::eval);
    CHECK(net.template layer<negate<T>>(0).mode() == advaug::mode::eval);
    CHECK(net.template layer<negate<T>>(0).parameters().empty());
}

}  // namespace test_layer
