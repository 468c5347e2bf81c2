#include <doctest/doctest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <fstream>
#include <sstream>

#include "support/child_process.hpp"
#include "support/models.hpp"
#include "support/skip.hpp"

// One namespace per file: the suite builds in unity batches (tests/CMakeLists.txt).
namespace test_trainer {

using namespace advaug;
namespace fs = std::filesystem;

namespace {

// A small synthetic classification problem: class k has its mass around a class centre.
dataset<float> blobs(std::size_t n, std::size_t features, std::size_t classes, std::uint64_t seed) {
    rng gen(seed);
    std::vector<float> centres(classes * features), x(n * features);
    for (auto& c : centres) c = static_cast<float>(gen.uniform(0.25, 0.75));
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t k = i % classes;
        y(i) = static_cast<std::int64_t>(k);
        for (std::size_t d = 0; d < features; ++d) {
            x[i * features + d] =
                std::clamp(centres[k * features + d] + static_cast<float>(0.08 * gen.normal()), 0.0f, 1.0f);
        }
    }
    return dataset<float>(std::move(x), {features}, std::move(y), classes);
}

train_options quiet(training_method m) {
    static std::ostringstream sink;
    auto o = train_options{}.method(m).learning_rate(lr_schedule::constant(0.1)).batch_size(16).seed(3)
                 .progress(progress_style::none).output(sink);
    if (m != training_method::plain) o.epsilon(0.1);
    return o;
}

std::vector<std::vector<float>> weights(mlp<float>& net) {
    std::vector<std::vector<float>> out;
    for (auto& p : net.parameters()) out.emplace_back(p.value.begin(), p.value.end());
    return out;
}

fs::path temp_dir(const std::string& name) {
    const auto dir = fs::temp_directory_path() / ("advaug_test_trainer_" + name + "_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

}  // namespace

TEST_CASE("the trainer's parameter gradient is (1 - alpha) grad CE(x) + alpha grad CE(x_adv), for each method") {
    const auto x = testing::uniform_batch<double>(12, 6, 1, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    struct setting {
        training_method method;
        double alpha;
    };
    for (const setting s :
         {setting{training_method::plain, 0.0}, setting{training_method::fgsm, 0.5},
          setting{training_method::fgsm, 0.25}, setting{training_method::fgsm_rs, 1.0},
          setting{training_method::fgsm_rs, 0.5}, setting{training_method::n_fgsm, 1.0},
          setting{training_method::n_fgsm, 0.3}, setting{training_method::pgd, 1.0},
          setting{training_method::pgd, 0.5}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const training_method method = s.method;
        const double alpha = s.alpha;
        CAPTURE(to_string(method));
        CAPTURE(alpha);
        mlp<double> net({6, 10, 3}, 5);
        sgd<double> opt;
        auto options = quiet(method).alpha(alpha);
        trainer tr(net, opt, options);
        net.set_mode(mode::train);
        tr.compute_gradient(x, y, method == training_method::plain ? 0.0 : 0.1, 77);
        const tensor<double, 2> x_adv = method == training_method::plain ? x : tr.adversarial_batch();
        if (method != training_method::plain) CHECK(testing::max_abs_diff(x_adv, x) > 0);

        // finite differences of the intended objective, with x_adv held fixed
        auto objective = [&] {
            typename mlp<double>::cache_type c;
            tensor<double, 2> logits;
            net.forward(x, c, logits);
            double loss = (1 - alpha) * cross_entropy(logits, y);
            if (alpha > 0) {
                net.forward(x_adv, c, logits);
                loss += alpha * cross_entropy(logits, y);
            }
            return loss;
        };
        auto params = net.parameters();
        const auto r = detail::compare_parameters(params, objective, gradient_check_options{});
        CHECK(r.checked == 6 * 10 + 10 + 10 * 3 + 3);
        CHECK(r.relative_error < 1e-6);
    }
}

TEST_CASE("the seed's recipe as written would add one more grad CE(x); advaug does not") {
    // The seed's attack calls loss.backward() on CE(x) before the training backward pass.
    const auto x = testing::uniform_batch<double>(12, 6, 2, 0.2, 0.8);
    const auto y = testing::cyclic_labels(12, 3);
    mlp<double> net({6, 10, 3}, 1);
    sgd<double> opt;
    trainer tr(net, opt, quiet(training_method::fgsm).alpha(0.5));
    tr.compute_gradient(x, y, 0.1, 1);
    std::vector<double> ours;
    for (auto& p : net.parameters()) ours.insert(ours.end(), p.grad.begin(), p.grad.end());
    // grad CE(x) alone
    net.zero_grad();
    typename mlp<double>::cache_type c;
    tensor<double, 2> logits, g;
    net.forward(x, c, logits);
    cross_entropy_gradient(logits, y, g);
    net.parameter_gradient(c, g);
    std::size_t i = 0;
    double leak_norm = 0, ours_norm = 0;
    for (auto& p : net.parameters())
        for (double v : p.grad) {
            leak_norm += v * v;
            ours_norm += ours[i] * ours[i];
            ++i;
        }
    // the leaked term is as large as the whole intended gradient: not a rounding matter
    CHECK(std::sqrt(leak_norm) > 0.5 * std::sqrt(ours_norm));
}

TEST_CASE("attacks run in eval mode by default and the model's mode is restored") {
    struct recording : mlp<double> {
        using mlp<double>::mlp;
        mutable std::vector<advaug::mode> forward_modes;
        void forward(const tensor<double, 2>& x, cache_type& c, tensor<double, 2>& l) const {
            forward_modes.push_back(mode());
            mlp<double>::forward(x, c, l);
        }
    };
    const auto x = testing::uniform_batch<double>(8, 4, 2);
    const auto y = testing::cyclic_labels(8, 2);
    for (auto attack_mode : {mode::eval, mode::train}) {
        recording net({4, 5, 2}, 1);
        sgd<double> opt;
        trainer tr(net, opt, quiet(training_method::pgd).pgd_steps(3).attack_mode(attack_mode));
        net.set_mode(mode::train);
        tr.compute_gradient(x, y, 0.1, 1);
        REQUIRE(net.forward_modes.size() == 3 + 1);  // three attack steps, then the x_adv pass
        for (int k = 0; k < 3; ++k) CHECK(net.forward_modes[k] == attack_mode);
        CHECK(net.forward_modes[3] == mode::train);
        CHECK(net.mode() == mode::train);
    }
}

TEST_CASE("options are validated when the trainer is built") {
    mlp<float> net({4, 3}, 0);
    sgd<float> opt;
    auto lr = lr_schedule::constant(0.1);
    CHECK_THROWS_WITH_AS(trainer(net, opt, train_options{}), "trainer(): learning_rate was not set; call .learning_rate(...)",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(trainer(net, opt, train_options{}.learning_rate(lr).method(training_method::fgsm_rs)),
                         "trainer(): method fgsm-rs needs epsilon; call .epsilon(...)", std::invalid_argument);
    CHECK_THROWS_WITH_AS(trainer(net, opt, train_options{}.learning_rate(lr).alpha(0.5)),
                         "trainer(): alpha is 0.5 but method plain has no adversarial loss", std::invalid_argument);
    CHECK_THROWS_WITH_AS(trainer(net, opt, train_options{}.learning_rate(lr).method(training_method::fgsm).epsilon(0.1).pgd_steps(5)),
                         "trainer(): pgd_steps/pgd_step_size are set but the method is fgsm, not pgd",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(trainer(net, opt, train_options{}.learning_rate(lr).method(training_method::fgsm).epsilon(0)),
                         doctest::Contains("with epsilon 0 is plain training"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_options{}.alpha(1.5), "train_options::alpha(): alpha must be in [0, 1], got 1.5",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_options{}.batch_size(0), "train_options::batch_size(): batch_size must be >= 1, got 0",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(train_options{}.epsilon(-1), "train_options::epsilon(): epsilon must be finite and >= 0, got -1",
                         std::invalid_argument);
    CHECK_THROWS_WITH_AS(parse_training_method("fgsm_rs"),
                         "parse_training_method(): unknown method 'fgsm_rs'; expected one of: plain, fgsm, "
                         "fgsm-rs, n-fgsm, pgd, family, augmix, augmax",
                         std::invalid_argument);
}

TEST_CASE("each option's getter has its setter's name and returns what it was given") {
    std::function<void(const batch_report&)> batch = [](const batch_report&) {};
    const auto o = train_options{}
                       .evaluation(50, 3)
                       .collapse_guard(10, 0.25, collapse_action::warn, 64, 5)
                       .checkpoint("run.ckpt", 20)
                       .on_batch(batch);
    CHECK(o.evaluation().samples == 50);
    CHECK(o.evaluation().pgd_steps == 3);
    REQUIRE(o.collapse_guard());
    CHECK(o.collapse_guard()->every_batches == 10);
    CHECK(o.collapse_guard()->drop == 0.25);
    CHECK(o.collapse_guard()->samples == 64);
    CHECK(o.checkpoint().path == "run.ckpt");
    CHECK(o.checkpoint().every_batches == 20);
    CHECK(static_cast<bool>(o.on_batch()));
    CHECK_FALSE(static_cast<bool>(o.on_epoch()));
    const train_options defaults;
    CHECK(defaults.evaluation().samples == 1000);
    CHECK(defaults.evaluation().pgd_steps == 20);
    CHECK_FALSE(defaults.collapse_guard());
    CHECK(defaults.checkpoint().path.empty());
    CHECK_FALSE(train_options(o).no_collapse_guard().collapse_guard());
}

TEST_CASE("fit() names itself and the batch when the data lie outside the domain") {
    const auto table = blobs(40, 3, 2, 5);
    std::vector<float> x(table.size() * 3);
    label_vector y = label_vector::from_shape({table.size()});
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.0f;  // standardized
    for (std::size_t i = 0; i < table.size(); ++i) y(i) = static_cast<std::int64_t>(i % 2);
    const dataset<float> data(std::move(x), {3}, std::move(y), 2);
    mlp<float> net({3, 2}, 0);
    sgd<float> opt;
    trainer tr(net, opt, quiet(training_method::fgsm).epochs(1));
    CHECK_THROWS_WITH_AS(tr.fit(data),
                         doctest::Contains("trainer::fit(): at epoch 1, batch 1: inputs["),
                         std::invalid_argument);
    trainer ok(net, opt, quiet(training_method::fgsm).epochs(1).domain(input_domain::unbounded()));
    CHECK_NOTHROW(ok.fit(data));
}

TEST_CASE("training learns, and logs the seed's line, epoch summaries, callbacks and JSON lines") {
    const auto data = blobs(400, 8, 4, 1);
    const auto [train, val] = data.split(0.25, 2);
    mlp<float> net({8, 16, 4}, 1);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    std::ostringstream out;
    const auto dir = temp_dir("log");
    const auto json = (dir / "log.jsonl").string();
    std::size_t batches_seen = 0, epochs_seen = 0;
    batch_report last_batch;
    auto o = train_options{}.method(training_method::fgsm).epsilon(0.05).learning_rate(lr_schedule::constant(0.05))
                 .epochs(3).batch_size(20).log_every(5).progress(progress_style::lines).output(out).json_log(json)
                 .on_batch([&](const batch_report& r) {
                     ++batches_seen;
                     last_batch = r;
                     CHECK(std::isfinite(r.adversarial_loss));
                     CHECK(r.loss == doctest::Approx(0.5 * r.clean_loss + 0.5 * r.adversarial_loss));
                 })
                 .on_epoch([&](const epoch_report&) { ++epochs_seen; });
    trainer tr(net, opt, o);
    const auto result = tr.fit(train, &val);
    REQUIRE(result.epochs.size() == 3);
    CHECK(result.epochs.back().loss < result.epochs.front().loss);
    CHECK(result.epochs.back().clean_accuracy > 0.6);  // 4 classes: chance is 0.25
    CHECK(std::isfinite(result.epochs.back().pgd_accuracy));
    CHECK(batches_seen == 3 * 3);  // 15 batches per epoch, logged at 1, 6, 11
    CHECK(epochs_seen == 3);
    const std::string text = out.str();
    CHECK(text.find("advaug: training fgsm on 300 samples") != std::string::npos);
    // the first line names the kernel library (backend/info.hpp)
    CHECK(text.substr(0, text.find('\n')).find("; kernels: " + advaug::backend::describe().summary()) !=
          std::string::npos);
    CHECK(text.find("epoch 1 batch 6/15  Loss: ") != std::string::npos);
    CHECK(text.find("(Standard: ") != std::string::npos);
    CHECK(text.find(", Adv: ") != std::string::npos);
    CHECK(text.find("epoch 3/3 done in") != std::string::npos);
    std::ifstream log(json);
    std::string line;
    std::size_t batch_lines = 0, epoch_lines = 0;
    std::string last_batch_line;
    while (std::getline(log, line)) {
        CHECK(line.front() == '{');
        CHECK(line.back() == '}');
        if (line.find("\"type\":\"batch\"") != std::string::npos) {
            ++batch_lines;
            last_batch_line = line;
        }
        if (line.find("\"type\":\"epoch\"") != std::string::npos) ++epoch_lines;
    }
    CHECK(batch_lines == 9);
    CHECK(epoch_lines == 3);
    // Numbers are the shortest text that reads back exactly: the log holds what the callback saw.
    auto logged = [&](const std::string& key) {
        const std::size_t at = last_batch_line.find("\"" + key + "\":");
        REQUIRE(at != std::string::npos);
        return std::strtod(last_batch_line.c_str() + at + key.size() + 3, nullptr);
    };
    CHECK(logged("loss") == last_batch.loss);
    CHECK(logged("clean_loss") == last_batch.clean_loss);
    CHECK(logged("adversarial_loss") == last_batch.adversarial_loss);
    CHECK(logged("lr") == last_batch.lr);
    fs::remove_all(dir);
}

TEST_CASE("the same seed gives bitwise identical weights; another seed does not") {
    const auto data = blobs(300, 10, 3, 4);
    auto run = [&](std::uint64_t seed) {
        mlp<float> net({10, 32, 3}, 7);
        sgd<float> opt(sgd_options{}.momentum(0.9));
        trainer tr(net, opt, quiet(training_method::fgsm_rs).epochs(2).seed(seed));
        tr.fit(data);
        return weights(net);
    };
    const auto a = run(11), b = run(11), c = run(12);
    CHECK(a == b);
    CHECK_FALSE(a == c);
}

namespace {
struct resume_setup {
    dataset<float> data = blobs(240, 10, 3, 6);
    train_options options(const std::string& checkpoint) const {
        return quiet(training_method::pgd).pgd_steps(2).epochs(3).checkpoint(checkpoint, 4);
    }
    // 15 batches per epoch, checkpoints after batches 4, 8, 12 and at each epoch's end
    std::vector<std::vector<float>> uninterrupted() const {
        mlp<float> net({10, 16, 3}, 2);
        adam<float> opt;
        trainer tr(net, opt, quiet(training_method::pgd).pgd_steps(2).epochs(3));
        tr.fit(data);
        return weights(net);
    }
    std::vector<std::vector<float>> resumed(const std::string& checkpoint) const {
        mlp<float> net({10, 16, 3}, 99);  // different initial weights: all must come from the file
        adam<float> opt;
        trainer tr(net, opt, options(checkpoint));
        if (fs::exists(checkpoint)) tr.resume(checkpoint);
        tr.fit(data);
        return weights(net);
    }
    // Runs training in a child process that is SIGKILLed; returns after it died.
    template <class Kill>
    void killed_run(const std::string& checkpoint, Kill&& kill) const {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mlp<float> net({10, 16, 3}, 2);  // the uninterrupted run's initial weights
            adam<float> opt;
            auto o = options(checkpoint).log_every(1).on_batch([&](const batch_report& r) { kill(r); });
            trainer tr(net, opt, o);
            try {
                if (fs::exists(checkpoint)) tr.resume(checkpoint);
                tr.fit(data);
            } catch (...) {
                ::_exit(3);
            }
            ::_exit(0);
        }
        int status = 0;
        ::waitpid(pid, &status, 0);
        CHECK((WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0)));
    }
};
}  // namespace

TEST_CASE("a run killed with SIGKILL and resumed ends with the same weights as an uninterrupted one") {
    resume_setup s;
    const auto dir = temp_dir("resume");
    const auto checkpoint = (dir / "state.ckpt").string();
    const auto expected = s.uninterrupted();
    // killed in epoch 2 after batch 10: the checkpoint after batch 8 is the last one
    s.killed_run(checkpoint, [](const batch_report& r) {
        if (r.epoch == 1 && r.batch == 9) ::raise(SIGKILL);
    });
    REQUIRE(fs::exists(checkpoint));
    CHECK(s.resumed(checkpoint) == expected);
    fs::remove_all(dir);
}

TEST_CASE("killed at random moments, even while writing a checkpoint, training still resumes exactly") {
    resume_setup s;
    const auto dir = temp_dir("random_kills");
    const auto checkpoint = (dir / "state.ckpt").string();
    const auto expected = s.uninterrupted();
    rng gen(2024);
    for (int round = 0; round < 6; ++round) {
        testing::child_signal trained;
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            mlp<float> net({10, 16, 3}, 2);
            adam<float> opt;
            // checkpoint after every batch, so that kills often land inside a write; the second
            // batch's callback comes after this child's first checkpoint
            std::size_t batches = 0;
            auto o = s.options(checkpoint).checkpoint(checkpoint, 1).log_every(1).on_batch([&](const batch_report&) {
                if (++batches == 2) trained.notify();
            });
            trainer tr(net, opt, o);
            if (fs::exists(checkpoint)) tr.resume(checkpoint);
            tr.fit(s.data);
            ::_exit(0);
        }
        trained.wait();  // false: the child finished the run before its second batch
        ::usleep(static_cast<useconds_t>(gen.uniform(0, 20000)));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        // whatever moment the kill hit, the file is a complete checkpoint
        REQUIRE(fs::exists(checkpoint));
        {
            mlp<float> net({10, 16, 3}, 0);
            adam<float> opt;
            trainer probe(net, opt, s.options(checkpoint));
            CHECK_NOTHROW(probe.resume(checkpoint));
        }
    }
    // a kill inside a write can leave that write's temporary file; the next write removes it
    std::size_t files = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        (void)entry;
        ++files;
    }
    CHECK(files <= 2);
    CHECK(s.resumed(checkpoint) == expected);
    fs::remove_all(dir);
}

TEST_CASE("a checkpoint from another architecture, method or a damaged file is refused and changes nothing") {
    const auto data = blobs(64, 10, 3, 6);
    const auto dir = temp_dir("refuse");
    const auto path = (dir / "a.ckpt").string();
    {
        mlp<float> net({10, 16, 3}, 2);
        sgd<float> opt(sgd_options{}.momentum(0.9));
        trainer tr(net, opt, quiet(training_method::plain).epochs(1));
        tr.fit(data);
        tr.save_checkpoint(path);
    }
    mlp<float> other({10, 12, 3}, 2);
    sgd<float> opt(sgd_options{}.momentum(0.9));
    const auto before = weights(other);
    trainer tr(other, opt, quiet(training_method::plain));
    CHECK_THROWS_WITH_AS(tr.resume(path),
                         doctest::Contains("has parameter 0 '0.weight' of shape [16, 10], the model has '0.weight' "
                                           "of shape [12, 10] (another architecture)"),
                         std::invalid_argument);
    CHECK(weights(other) == before);

    mlp<float> same({10, 16, 3}, 2);
    trainer tr_method(same, opt, quiet(training_method::fgsm));
    CHECK_THROWS_WITH_AS(tr_method.resume(path), doctest::Contains("was written with method plain, this trainer has fgsm"),
                         std::invalid_argument);

    auto bytes = io::read_file(path);
    bytes[bytes.size() / 2] ^= 0x40;
    io::write_file_atomically((dir / "bad.ckpt").string(), bytes);
    trainer tr_same(same, opt, quiet(training_method::plain));
    CHECK_THROWS_WITH_AS(tr_same.resume((dir / "bad.ckpt").string()),
                         doctest::Contains("is corrupted or truncated (checksum mismatch)"), io_error);
    bytes = io::read_file(path);
    bytes.resize(bytes.size() / 3);
    io::write_file_atomically((dir / "short.ckpt").string(), bytes);
    CHECK_THROWS_AS(tr_same.resume((dir / "short.ckpt").string()), io_error);
    CHECK_THROWS_WITH_AS(tr_same.resume((dir / "missing.ckpt").string()),
                         doctest::Contains("cannot open"), io_error);
    fs::remove_all(dir);
}

TEST_CASE("a checkpoint keeps batch norm's running statistics, so a resumed run ends bit-identical") {
    const auto data = blobs(64, 10, 3, 8);
    const auto dir = temp_dir("buffers");
    const auto path = (dir / "bn.ckpt").string();
    auto make = [] {
        rng gen(5);
        auto net = sequential<float, 2>({10});
        net.add(dense<float>(10, 16, gen)).add(batch_norm<float, 2>(16)).add(relu<float, 2>{});
        net.add(dense<float>(16, 3, gen));
        return net;
    };
    auto state_of = [](sequential<float, 2>& net) {
        std::vector<std::vector<float>> out;
        for (auto& p : net.state()) out.emplace_back(p.value.begin(), p.value.end());
        return out;
    };
    // Attacks run in eval mode, where the running statistics decide the adversarial batch.
    const auto options = quiet(training_method::fgsm_rs).epochs(2);

    auto whole = make();
    sgd<float> whole_opt(sgd_options{}.momentum(0.9));
    trainer(whole, whole_opt, options).fit(data);

    auto first = make();
    sgd<float> first_opt(sgd_options{}.momentum(0.9));
    trainer first_tr(first, first_opt, train_options(options).epochs(1));
    first_tr.fit(data);
    first_tr.save_checkpoint(path);

    auto resumed = make();  // fresh running statistics: only the checkpoint can restore them
    sgd<float> resumed_opt(sgd_options{}.momentum(0.9));
    trainer resumed_tr(resumed, resumed_opt, options);
    resumed_tr.resume(path);
    CHECK(state_of(resumed) == state_of(first));
    resumed_tr.fit(data);
    CHECK(state_of(resumed) == state_of(whole));
    fs::remove_all(dir);
}

TEST_CASE("a NaN loss stops training with the epoch and batch, and the last checkpoint stays loadable") {
    const auto data = blobs(64, 10, 3, 6);
    const auto dir = temp_dir("nan");
    const auto path = (dir / "a.ckpt").string();
    mlp<float> net({10, 16, 3}, 2);
    sgd<float> opt;
    // the model diverges during epoch 2: after batch 3 a weight becomes NaN
    auto o = quiet(training_method::fgsm).epochs(3).checkpoint(path).log_every(1).on_batch([&](const batch_report& r) {
        if (r.epoch == 1 && r.batch == 2) net.dense_layer(0).weight()(0, 0) = std::numeric_limits<float>::quiet_NaN();
    });
    trainer tr(net, opt, o);
    // the attack meets the NaN first (in its input gradient) and says where
    CHECK_THROWS_WITH_AS(tr.fit(data),
                         ("trainer::fit(): at epoch 2, batch 4: trainer::compute_gradient(): the input gradient "
                          "is nan at sample 0, element 0; the model's forward or input_gradient produced a "
                          "non-finite value; training stopped; the last checkpoint '" + path + "' is unchanged")
                             .c_str(),
                         numeric_error);
    // plain training has no attack: the loss itself is NaN
    mlp<float> plain_net({10, 16, 3}, 2);
    sgd<float> plain_opt;
    auto po = quiet(training_method::plain).epochs(3).log_every(1).on_batch([&](const batch_report& r) {
        if (r.epoch == 1 && r.batch == 2) plain_net.dense_layer(1).bias()(0) = std::numeric_limits<float>::infinity();
    });
    trainer plain_tr(plain_net, plain_opt, po);
    CHECK_THROWS_WITH_AS(plain_tr.fit(data), "trainer::fit(): the training loss is nan at epoch 2, batch 4; training stopped",
                         numeric_error);
    // the checkpoint written at the end of epoch 1 loads, with finite weights
    mlp<float> again({10, 16, 3}, 0);
    sgd<float> opt2;
    trainer probe(again, opt2, quiet(training_method::fgsm));
    REQUIRE_NOTHROW(probe.resume(path));
    CHECK(probe.next_epoch() == 1);
    for (auto& p : again.parameters())
        for (float v : p.value) CHECK(std::isfinite(v));
    fs::remove_all(dir);
}

TEST_CASE("the collapse guard warns, or stops and restores the snapshot of its best reading") {
    // The collapse is made, not waited for: at the last batch of epoch 3 the callback negates
    // the output layer, so the guard's reading at the end of that epoch falls to about zero on
    // any machine. The guard's decision itself is tested on scripted readings in
    // test_collapse_guard.cpp.
    const auto data = blobs(240, 10, 3, 6);
    struct run_result {
        training_result result;
        std::vector<std::vector<std::vector<float>>> at_epoch_end;  // weights the guard measured
        std::vector<std::vector<float>> final;
    };
    auto run = [&](collapse_action action) {
        mlp<float> net({10, 16, 3}, 2);
        sgd<float> opt(sgd_options{}.momentum(0.9));
        run_result out;
        auto o = quiet(training_method::fgsm_rs).epsilon(0.02).epochs(5).log_every(1)
                     .collapse_guard(0, 0.3, action, 240, 5)
                     .on_batch([&](const batch_report& r) {
                         if (r.batch + 1 != r.batches_per_epoch) return;
                         if (r.epoch == 2) {
                             // in place: the trainer holds views of these buffers
                             for (auto& v : net.dense_layer(1).weight()) v = -v;
                             for (auto& v : net.dense_layer(1).bias()) v = -v;
                         }
                         out.at_epoch_end.push_back(weights(net));
                     });
        trainer tr(net, opt, o);
        out.result = tr.fit(data);
        out.final = weights(net);
        return out;
    };

    const auto warned = run(collapse_action::warn);
    REQUIRE(warned.result.epochs.size() == 5);
    const auto& e = warned.result.epochs;
    const double best = std::max(e[0].guard_pgd_accuracy, e[1].guard_pgd_accuracy);
    MESSAGE("guard PGD accuracy: ", e[0].guard_pgd_accuracy, ", ", e[1].guard_pgd_accuracy, ", then ",
            e[2].guard_pgd_accuracy, " after the output layer was negated");
    REQUIRE(best > 0.5);  // the setting learns: a drop of 0.3 is then a real collapse
    CHECK(e[2].guard_pgd_accuracy < best - 0.3);
    CHECK(warned.result.collapse_detected);
    CHECK_FALSE(warned.result.stopped_early);
    CHECK_FALSE(e[1].collapse_detected);
    CHECK(e[2].collapse_detected);

    const auto stopped = run(collapse_action::stop_and_restore);
    CHECK(stopped.result.collapse_detected);
    CHECK(stopped.result.stopped_early);
    REQUIRE(stopped.result.epochs.size() == 3);
    // the weights back are those of the best reading (the first maximum), bit for bit
    const std::size_t best_epoch = e[1].guard_pgd_accuracy > e[0].guard_pgd_accuracy ? 1 : 0;
    CHECK(stopped.final == stopped.at_epoch_end[best_epoch]);
    CHECK_FALSE(stopped.final == stopped.at_epoch_end[2]);
}

TEST_CASE("on a terminal the progress bar shows the position, samples per second, ETA and the losses") {
    const auto data = blobs(200, 8, 4, 1);
    mlp<float> net({8, 16, 4}, 1);
    sgd<float> opt;
    std::ostringstream out;
    auto o = train_options{}.method(training_method::fgsm_rs).epsilon(0.05).learning_rate(lr_schedule::constant(0.05))
                 .epochs(2).batch_size(20).progress(progress_style::bar).output(out);
    trainer tr(net, opt, o);
    tr.fit(data);
    const std::string text = out.str();
    CHECK(text.find("\repoch 1/2 [") != std::string::npos);
    CHECK(text.find("] 10/10") != std::string::npos);
    CHECK(text.find(" samples/s  ETA ") != std::string::npos);
    CHECK(text.find("loss ") != std::string::npos);
    CHECK(text.find(", adv ") != std::string::npos);
    CHECK(text.find("epoch 2/2 done in") != std::string::npos);
}

TEST_CASE("an epsilon warm-up ramps epsilon linearly from 0 over the given epochs") {
    const auto data = blobs(80, 8, 4, 1);
    mlp<float> net({8, 16, 4}, 1);
    sgd<float> opt;
    std::vector<batch_report> seen;
    auto o = quiet(training_method::pgd).pgd_steps(2).epochs(3).batch_size(20).epsilon(0.2).epsilon_warmup(2).log_every(1)
                 .on_batch([&](const batch_report& r) { seen.push_back(r); });
    trainer tr(net, opt, o);
    tr.fit(data);
    REQUIRE(seen.size() == 12);  // 3 epochs of 4 batches
    for (const auto& r : seen) {
        const double progress = static_cast<double>(r.epoch) + static_cast<double>(r.batch) / 4.0;
        CHECK(r.epsilon == doctest::Approx(0.2 * std::min(1.0, progress / 2.0)));
    }
    CHECK(seen.front().epsilon == 0.0);
    CHECK(seen.back().epsilon == doctest::Approx(0.2));
}

}  // namespace test_trainer
