// The collapse guard on a real catastrophic overfit: plain FGSM training of a wide MLP on
// Fashion-MNIST. Kept out of test_trainer.cpp (whose made collapse exercises the guard's stop
// and restore on any machine) because this test reports itself skipped where the run did not
// collapse (see below), and a skip marks its whole executable as skipped.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <sstream>
#include <vector>

#include "advaug/advaug.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_collapse_guard_fashion_mnist {

using namespace advaug;
namespace fs = std::filesystem;

namespace {

std::vector<std::vector<float>> weights(mlp<float>& net) {
    std::vector<std::vector<float>> out;
    for (auto& p : net.parameters()) out.emplace_back(p.value.begin(), p.value.end());
    return out;
}

// Plain FGSM training (no random start, alpha 1) at eps 0.2 of a wide MLP on 10,000
// Fashion-MNIST images: a setting that overfits catastrophically, but not on every machine
// within the run. Whether and when the guard's reading collapses depends on the kernels'
// rounding: at epoch 10 on two AMD EPYCs (OpenBLAS, then oneDNN) and 8 on an Intel Xeon; on an
// AMD EPYC (Zen 3, oneDNN's AVX2 kernels) the reading wandered between 0.115 and 0.247 for 20
// epochs, never more than 0.15 below its best (docs/training.md has the readings). So the test
// holds the guard to the readings it got, and reports itself skipped where none collapsed.
struct collapse_setup {
    std::optional<dataset<std::uint8_t>> train, test;
    collapse_setup() {
        const std::string dir = default_fashion_mnist_dir();
        if (!fs::exists(dir)) return;
        const auto fm = load_fashion_mnist(dir);
        std::vector<std::uint8_t> px(fm.train_images.data(), fm.train_images.data() + 10000 * 784);
        label_vector y = xt::view(fm.train_labels, xt::range(0, 10000));
        train.emplace(std::move(px), std::vector<std::size_t>{784}, std::move(y), 10, 1.0 / 255);
        std::vector<std::uint8_t> tpx(fm.test_images.data(), fm.test_images.data() + 1000 * 784);
        label_vector ty = xt::view(fm.test_labels, xt::range(0, 1000));
        test.emplace(std::move(tpx), std::vector<std::size_t>{784}, std::move(ty), 10, 1.0 / 255);
    }
    double pgd_accuracy(mlp<float>& net) const {
        return robust_accuracy(net, *test, [](const auto& m, const auto& x, const auto& y) {
            return pgd(m, x, y, pgd_options{}.epsilon(0.2).steps(20).seed(3));
        });
    }
};
}  // namespace

TEST_CASE("on Fashion-MNIST the guard stops at the first collapsed reading and restores the best weights") {
    collapse_setup s;
    if (!s.train) {
        advaug::testing::skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)");
        return;
    }
    constexpr double drop = 0.15;
    constexpr std::size_t epochs = 20;
    mlp<float> net({784, 1024, 10}, 1, weight_init::pytorch_default);
    std::vector<std::vector<std::vector<float>>> at_epoch_end;
    sgd<float> opt(sgd_options{}.momentum(0.9));
    static std::ostringstream sink;
    auto o = train_options{}.method(training_method::fgsm).epsilon(0.2).alpha(1.0)
                 .learning_rate(lr_schedule::constant(0.02)).epochs(epochs).batch_size(64).seed(1)
                 .progress(progress_style::none).output(sink).log_every(1)
                 .collapse_guard(0, drop, collapse_action::stop_and_restore, 1000, 10)
                 .on_batch([&](const batch_report& r) {
                     if (r.batch + 1 == r.batches_per_epoch) at_epoch_end.push_back(weights(net));
                 });
    trainer tr(net, opt, o);
    const auto result = tr.fit(*s.train);
    const auto& e = result.epochs;
    for (const auto& r : e) {
        MESSAGE("epoch ", r.epoch + 1, ": guard PGD accuracy ", r.guard_pgd_accuracy, ", clean loss ", r.clean_loss,
                ", FGSM loss ", r.adversarial_loss);
    }
    REQUIRE(!e.empty());
    REQUIRE(at_epoch_end.size() == e.size());
    // The first reading more than `drop` below the best (the first maximum) before it: where
    // the guard must stop, and the epoch whose weights it must put back.
    std::size_t best_epoch = 0;
    std::optional<std::size_t> collapsed_at;
    for (std::size_t k = 1; k < e.size(); ++k) {
        if (e[k].guard_pgd_accuracy < e[best_epoch].guard_pgd_accuracy - drop) {
            collapsed_at = k;
            break;
        }
        if (e[k].guard_pgd_accuracy > e[best_epoch].guard_pgd_accuracy) best_epoch = k;
    }
    if (!collapsed_at) {
        // No false alarm: the guard let every epoch run.
        CHECK_FALSE(result.collapse_detected);
        CHECK_FALSE(result.stopped_early);
        CHECK(e.size() == epochs);
        advaug::testing::skip("no guard reading fell more than 0.15 below the best before it in 20 epochs on this "
                              "machine (readings above), so the guard's stop and restore on a real collapse was "
                              "not exercised; the made collapse of the test before exercises them on any machine");
        return;
    }
    // ... it stopped right there ...
    CHECK(result.collapse_detected);
    CHECK(result.stopped_early);
    CHECK(e.size() == *collapsed_at + 1);
    // ... and put back the weights of the best reading, bit for bit
    CHECK(weights(net) == at_epoch_end[best_epoch]);
    const double restored = s.pgd_accuracy(net);
    {
        mlp<float> collapsed_net({784, 1024, 10}, 1, weight_init::pytorch_default);
        auto params = collapsed_net.parameters();
        for (std::size_t i = 0; i < params.size(); ++i) {
            std::copy(at_epoch_end.back()[i].begin(), at_epoch_end.back()[i].end(), params[i].value.begin());
        }
        const double collapsed = s.pgd_accuracy(collapsed_net);
        MESSAGE("PGD-20 accuracy on 1,000 test images: restored (epoch ", best_epoch + 1, ") ", restored,
                ", collapsed (epoch ", e.size(), ") ", collapsed);
        CHECK(restored > collapsed);
    }
}

}  // namespace test_collapse_guard_fashion_mnist
