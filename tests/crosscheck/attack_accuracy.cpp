// The advaug side of the cross-check against torchattacks (tests/crosscheck/run.sh): runs
// one attack on the first N Fashion-MNIST test images with a saved bundled model and prints
// one line of JSON with the clean and robust accuracy, and per sample whether it was correct
// before and after the attack ("1"/"0"), so that the Python side can compare sample by sample.
//
//   attack_accuracy MODEL.npz ATTACK [--n 1000] [--eps 0.1] [--seed 0] [--data DIR]
//
// ATTACK is apgd-ce, apgd-t, fab-t, square or autoattack, with the settings torchattacks'
// classes are given by torchattacks_crosscheck.py: 100 APGD and FAB iterations, 9 target
// classes, Square with 5000 queries and p_init 0.8 (standalone: rescaled schedule; in
// AutoAttack: not rescaled, as the authors' AutoAttack does), one restart each, L-inf, pixels
// in [0, 1].
#include <advaug/advaug.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>

namespace {

struct settings {
    std::string model_path;
    std::string attack;
    std::size_t n = 1000;
    double eps = 0.1;
    std::uint64_t seed = 0;
    std::string data_dir = advaug::default_fashion_mnist_dir();
};

settings parse(int argc, char** argv) {
    if (argc < 3) throw std::invalid_argument("usage: attack_accuracy MODEL.npz ATTACK [--n N] [--eps E] [--seed S] [--data DIR]");
    settings s;
    s.model_path = argv[1];
    s.attack = argv[2];
    for (int i = 3; i < argc; i += 2) {
        const std::string flag = argv[i];
        if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
        const std::string value = argv[i + 1];
        if (flag == "--n") s.n = std::stoul(value);
        else if (flag == "--eps") s.eps = std::stod(value);
        else if (flag == "--seed") s.seed = std::stoull(value);
        else if (flag == "--data") s.data_dir = value;
        else throw std::invalid_argument("unknown option " + flag);
    }
    if (s.attack != "apgd-ce" && s.attack != "apgd-t" && s.attack != "fab-t" && s.attack != "square" &&
        s.attack != "autoattack") {
        throw std::invalid_argument("ATTACK must be apgd-ce, apgd-t, fab-t, square or autoattack, got '" + s.attack + "'");
    }
    return s;
}

// "1" per sample the model classifies correctly, else "0".
template <class M, class X>
std::string correct_flags(const M& model, const X& x, const advaug::label_vector& y) {
    typename M::cache_type cache;
    advaug::tensor<float, 2> logits;
    model.forward(x, cache, logits);
    const std::size_t k = model.num_classes();
    std::string flags(y.size(), '0');
    for (std::size_t i = 0; i < y.size(); ++i) {
        std::size_t best = 0;  // the first maximal logit, as torch.argmax
        for (std::size_t j = 1; j < k; ++j) {
            if (logits(i, j) > logits(i, best)) best = j;
        }
        if (static_cast<std::int64_t>(best) == y(i)) flags[i] = '1';
    }
    return flags;
}

template <class M, class X>
X run_attack(const settings& s, const M& model, const X& x, const advaug::label_vector& y) {
    const bool flat = X::rank == 2;  // the MLP: Square sees its rows as 1 x 28 x 28 images
    if (s.attack == "apgd-ce") {
        return advaug::apgd(model, x, y, advaug::apgd_options{}.epsilon(s.eps).n_iter(100).seed(s.seed));
    }
    if (s.attack == "apgd-t") {
        return advaug::apgd_t(model, x, y,
                              advaug::apgd_t_options{}.epsilon(s.eps).n_iter(100).n_target_classes(9).seed(s.seed));
    }
    if (s.attack == "fab-t") {
        return advaug::fab_t(model, x, y,
                             advaug::fab_t_options{}.epsilon(s.eps).n_iter(100).n_target_classes(9).seed(s.seed));
    }
    if (s.attack == "square") {
        auto o = advaug::square_options{}.epsilon(s.eps).n_queries(5000).p_init(0.8).rescale_schedule(true).seed(s.seed);
        if (flat) o.image_shape(1, 28, 28);
        return advaug::square(model, x, y, o);
    }
    auto o = advaug::autoattack_options{}.epsilon(s.eps).n_iter(100).n_target_classes(9).n_queries(5000).seed(s.seed);
    if (flat) o.image_shape(1, 28, 28);
    return advaug::autoattack(model, x, y, o).adversarial;
}

template <class M, class X>
void run(const settings& s, M& model, const X& x, const advaug::label_vector& y, const char* arch) {
    advaug::io::load_model(s.model_path, model);
    model.set_mode(advaug::mode::eval);
    const auto start = std::chrono::steady_clock::now();
    const X adv = run_attack(s, std::as_const(model), x, y);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const std::string clean = correct_flags(model, x, y);
    const std::string robust = correct_flags(model, adv, y);
    double linf = 0;
    for (std::size_t i = 0; i < x.size(); ++i) linf = std::max(linf, double(std::abs(adv.flat(i) - x.flat(i))));
    const auto count = [](const std::string& f) { return static_cast<std::size_t>(std::count(f.begin(), f.end(), '1')); };
    std::printf("{\"model\": \"%s\", \"arch\": \"%s\", \"attack\": \"%s\", \"n\": %zu, \"eps\": %g, \"seed\": %llu, "
                "\"clean\": %zu, \"robust\": %zu, \"max_linf\": %.9g, \"seconds\": %.2f, \"clean_flags\": \"%s\", "
                "\"robust_flags\": \"%s\"}\n",
                s.model_path.c_str(), arch, s.attack.c_str(), y.size(), s.eps,
                static_cast<unsigned long long>(s.seed), count(clean), count(robust), linf, seconds,
                clean.c_str(), robust.c_str());
}

}  // namespace

int main(int argc, char** argv) try {
    const settings s = parse(argc, argv);
    const auto data = advaug::load_fashion_mnist(s.data_dir);
    const std::size_t n = std::min(s.n, data.test_labels.size());
    advaug::label_vector y = xt::view(data.test_labels, xt::range(0, n));
    const auto info = advaug::io::read_architecture(s.model_path);
    // Pixels / 255 in float, as torchattacks_crosscheck.py does: both sides see the same bits.
    if (info.kind == advaug::io::architecture_kind::mlp) {
        advaug::tensor<float, 2> x({n, 784});
        for (std::size_t i = 0; i < n * 784; ++i) x.flat(i) = float(data.test_images.flat(i)) / 255.0f;
        advaug::mlp<float> model(info.widths);
        run(s, model, x, y, "mlp");
    } else if (info.kind == advaug::io::architecture_kind::cnn || info.kind == advaug::io::architecture_kind::cnn_bn) {
        advaug::tensor<float, 4> x({n, 1, 28, 28});
        for (std::size_t i = 0; i < n * 784; ++i) x.flat(i) = float(data.test_images.flat(i)) / 255.0f;
        advaug::cnn<float> model(0, advaug::weight_init::pytorch_default,
                                 info.kind == advaug::io::architecture_kind::cnn_bn);
        run(s, model, x, y, info.kind == advaug::io::architecture_kind::cnn ? "cnn" : "cnn-bn");
    } else {
        throw std::invalid_argument("'" + s.model_path + "' holds no bundled mlp or cnn (" +
                                    advaug::io::to_string(info.kind) + ")");
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "attack_accuracy: %s\n", e.what());
    return 1;
}
