// Data-parallel training (distributed/data_parallel.hpp, training/data_parallel.hpp), run by
// every rank of `mpirun -np R`: R ranks on a global batch B take the single-process step on
// the same B samples, up to float summation order; ranks agree bit for bit; reruns repeat.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "advaug/advaug.hpp"
#include "advaug/distributed/data_parallel.hpp"
#include "advaug/distributed/evaluation.hpp"

using namespace advaug;

namespace {

const distributed::communicator& world() {
    static const distributed::communicator comm;
    return comm;
}

/// A seeded synthetic data set: n samples of 12 features in [0, 1), 3 classes that depend on
/// the features, so that training moves the weights.
dataset<float> synthetic(std::size_t n, std::uint64_t seed = 7) {
    rng gen(seed);
    std::vector<float> x(n * 12);
    auto y = label_vector::from_shape({n});
    for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t d = 0; d < 12; ++d)
            s += (x[i * 12 + d] = static_cast<float>(gen.uniform())) * (d % 3);
        y(i) = static_cast<std::int64_t>(s) % 3;
    }
    return dataset<float>(std::move(x), {12}, std::move(y), 3);
}

train_options options(training_method m, std::size_t epochs = 5) {
    static std::ostringstream sink;
    auto o = train_options{}
                 .method(m)
                 .learning_rate(lr_schedule::constant(0.2))
                 .batch_size(16)
                 .seed(11)
                 .epochs(epochs)
                 .progress(progress_style::none)
                 .output(sink)
                 .log_every(0);
    if (m != training_method::plain) o.epsilon(0.05);
    return o;
}

template <class Model>
std::vector<float> flat(Model& net) {
    std::vector<float> out;
    for (auto& p : net.parameters()) out.insert(out.end(), p.value.begin(), p.value.end());
    return out;
}

/// Trains a fresh MLP with `o` on `data` and returns its parameters.
std::vector<float> train(const train_options& o, const dataset<float>& data) {
    mlp<float> net({12, 16, 3}, 5);
    sgd<float> opt;
    trainer tr(net, opt, o);
    tr.fit(data);
    return flat(net);
}

/// 12-16-3 with `middle` (a dropout or a batch norm) after the hidden layer's ReLU.
template <class Layer>
sequential<float, 2> with_layer(Layer middle) {
    rng gen(5);
    return sequential<float, 2>({12})
        .add(dense<float>(12, 16, gen))
        .add(relu<float, 2>{})
        .add(std::move(middle))
        .add(dense<float>(16, 3, gen));
}

template <class Layer>
std::vector<float> train_with(const train_options& o, const dataset<float>& data, Layer middle) {
    auto net = with_layer(std::move(middle));
    sgd<float> opt;
    trainer tr(net, opt, o);
    tr.fit(data);
    return flat(net);
}

/// The parameters and buffers (batch norm's running statistics) of a trained model.
template <class Model>
std::vector<float> trained_state(Model net, const train_options& o, const dataset<float>& data) {
    sgd<float> opt;
    trainer tr(net, opt, o);
    tr.fit(data);
    std::vector<float> out;
    for (auto& p : net.state()) out.insert(out.end(), p.value.begin(), p.value.end());
    return out;
}

/// 12-16-3 with batch norm between the hidden layer and its ReLU.
sequential<float, 2> small_bn_mlp() {
    rng gen(5);
    return sequential<float, 2>({12})
        .add(dense<float>(12, 16, gen))
        .add(batch_norm<float>(16))
        .add(relu<float, 2>{})
        .add(dense<float>(16, 3, gen));
}

/// A small CNN with 2d batch norm on 1 x 3 x 4 images.
sequential<float, 4> small_cnn() {
    rng gen(5);
    return sequential<float, 4>({1, 3, 4})
        .add(conv2d<float>(1, 4, 3, gen, conv2d_options{}.padding(1)))
        .add(batch_norm<float, 4>(4))
        .add(relu<float, 4>{})
        .add(flatten<float>{})
        .add(dense<float>(48, 3, gen));
}

/// Whether every rank holds exactly rank 0's values.
bool same_on_every_rank(std::vector<float> v) {
    std::vector<float> root = v;
    world().broadcast(std::as_writable_bytes(std::span<float>(root)));
    std::uint64_t differs[1] = {
        std::memcmp(root.data(), v.data(), v.size() * sizeof(float)) != 0 ? 1u : 0u};
    world().all_reduce_sum(std::span<std::uint64_t>(differs));
    return differs[0] == 0;
}

double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::abs(static_cast<double>(b[i])));
    }
    return diff / scale;
}

}  // namespace

TEST_CASE("20 steps on R ranks equal 20 single-process steps on the same global batches") {
    // 72 samples in batches of 16: four full batches and one of 8 per epoch (a smaller last
    // batch, split unevenly over 3 ranks); 4 epochs are 20 steps.
    const auto data = synthetic(72);
    struct setting {
        training_method method;
        double alpha;
    };
    SUBCASE("plain and the seed's FGSM")
    for (const setting s :
         {setting{training_method::plain, 0.0}, setting{training_method::fgsm, 0.5},
          setting{training_method::fgsm, 1.0}}) {
        // Not a structured binding: clang before 16 cannot capture one (CHECK and CAPTURE do).
        const training_method method = s.method;
        const double alpha = s.alpha;
        CAPTURE(to_string(method));
        CAPTURE(alpha);
        auto o = options(method, 4);
        if (method != training_method::plain) o.alpha(alpha);
        const auto alone = train(o, data);
        const auto shared = train(distributed::data_parallel(world(), o), data);
        CHECK(max_relative_difference(shared, alone) <= 1e-5);
        CHECK(max_relative_difference(shared, flat(*std::make_unique<mlp<float>>(
                                                  std::vector<std::size_t>{12, 16, 3}, 5))) > 1e-2);
        CHECK(same_on_every_rank(shared));
        CHECK(shared ==
              train(distributed::data_parallel(world(), o), data));  // bit-identical rerun
    }
    SUBCASE("method family, one gradient step from the identity (no randomness)") {
        const auto o = options(training_method::plain, 4)
                           .method(training_method::family)
                           .family(linf_ball<float>(12, 0.05),
                                   worst_case_options{}.steps(1).random_start(false));
        const auto alone = train(o, data);
        const auto shared = train(distributed::data_parallel(world(), o), data);
        CHECK(max_relative_difference(shared, alone) <= 1e-5);
        CHECK(same_on_every_rank(shared));
    }
}

TEST_CASE("random starts and dropout: R ranks draw one process's noise, sample for sample") {
    // As above, 20 steps; every sample's noise is counted from its place in the global batch.
    const auto data = synthetic(72);
    const auto initial =
        flat(*std::make_unique<mlp<float>>(std::vector<std::size_t>{12, 16, 3}, 5));
    SUBCASE("FGSM-RS, N-FGSM, PGD")
    for (auto method : {training_method::fgsm_rs, training_method::n_fgsm, training_method::pgd}) {
        CAPTURE(to_string(method));
        const auto o = options(method, 4);
        const auto shared = train(distributed::data_parallel(world(), o), data);
        CHECK(max_relative_difference(shared, train(o, data)) <= 1e-5);
        CHECK(max_relative_difference(shared, initial) > 1e-2);
        CHECK(same_on_every_rank(shared));
        CHECK(shared == train(distributed::data_parallel(world(), o), data));
    }
    SUBCASE("method family, 2 steps from a random start") {
        for (bool l2 : {false, true}) {
            CAPTURE(l2);
            auto o = options(training_method::plain, 4).method(training_method::family);
            if (l2) {
                o.family(l2_ball<float>(12, 0.3), worst_case_options{}.steps(2));
            } else {
                o.family(linf_ball<float>(12, 0.05), worst_case_options{}.steps(2));
            }
            const auto shared = train(distributed::data_parallel(world(), o), data);
            CHECK(max_relative_difference(shared, train(o, data)) <= 1e-5);
            CHECK(same_on_every_rank(shared));
            CHECK(shared == train(distributed::data_parallel(world(), o), data));
        }
    }
    SUBCASE("augmix and augmax: the mixture's draws and augmax's search from them") {
        const image_shape shape{1, 3, 4};
        const augment_and_mix<float> mixture(
            {any_family<float>(photometric<float>(
                 shape, {.brightness = symmetric(0.2), .contrast = symmetric(0.4)})),
             any_family<float>(affine<float>(
                 shape, {.rotation = symmetric(20), .translate_x = symmetric(1.0)}))});
        for (auto method : {training_method::augmix, training_method::augmax}) {
            CAPTURE(to_string(method));
            const auto o =
                options(training_method::plain, 4).method(method).consistency(mixture, 12);
            const auto shared = train(distributed::data_parallel(world(), o), data);
            CHECK(max_relative_difference(shared, train(o, data)) <= 1e-5);
            CHECK(same_on_every_rank(shared));
        }
    }
    SUBCASE("dropout, with FGSM-RS attacking in train mode") {
        const auto o = options(training_method::fgsm_rs, 4).attack_mode(mode::train);
        const dropout<float, 2> drop(0.3, 21);
        const auto shared = train_with(distributed::data_parallel(world(), o), data, drop);
        const auto alone = train_with(o, data, drop);
        CHECK(max_relative_difference(shared, alone) <= 1e-5);
        CHECK(max_relative_difference(alone, train_with(o, data, dropout<float, 2>(0.3, 22))) >
              1e-3);  // the masks matter
        CHECK(same_on_every_rank(shared));
    }
}

TEST_CASE(
    "a global batch with fewer samples than ranks is refused on every rank, naming the batch") {
    const std::size_t ranks = world().size();
    // the last batch has ranks - 1 samples; one rank alone takes a last batch of 1
    const auto data = synthetic(16 + std::max<std::size_t>(ranks - 1, 1));
    mlp<float> net({12, 16, 3}, 5);
    sgd<float> opt;
    trainer tr(net, opt, distributed::data_parallel(world(), options(training_method::plain, 1)));
    std::string message;
    try {
        tr.fit(data);
    } catch (const std::invalid_argument& e) {
        message = e.what();
    }
    if (ranks == 1) {
        CHECK(message.empty());
        return;
    }
    CHECK(message.find("trainer::fit(): a batch of " + std::to_string(ranks - 1) +
                       " samples cannot be split over " + std::to_string(ranks) + " processes") ==
          0);
}

TEST_CASE("sharded evaluation reduces the counts to the single-process accuracy") {
    const auto data = synthetic(101);
    mlp<float> net({12, 16, 3}, 5);
    sgd<float> opt;
    trainer tr(net, opt, options(training_method::plain, 3));
    tr.fit(data);
    CHECK(distributed::accuracy(world(), net, data, 7) == accuracy(net, data, 7));
    const auto shard = distributed::shard(world(), data);
    std::uint64_t n[1] = {shard.size()};
    world().all_reduce_sum(std::span<std::uint64_t>(n));
    CHECK(n[0] == data.size());
}

TEST_CASE(
    "rank 0 writes the checkpoint, every rank resumes from it, and the run continues bit for bit") {
    const auto data = synthetic(72);
    const std::string path = "distributed_checkpoint_np" + std::to_string(world().size()) + ".bin";
    const auto o = options(training_method::fgsm_rs, 2);
    const auto whole = train(distributed::data_parallel(world(), o), data);
    {
        auto first = o;
        first.epochs(1).checkpoint(path, 2);
        train(distributed::data_parallel(world(), first), data);
    }
    world().barrier();                // rank 0's file is complete before anyone reads it
    mlp<float> net({12, 16, 3}, 99);  // other initial weights: the checkpoint must replace them
    sgd<float> opt;
    trainer tr(net, opt, distributed::data_parallel(world(), o));
    tr.resume(path);
    CHECK(tr.next_epoch() == 1);
    tr.fit(data);
    CHECK(flat(net) == whole);
    world().barrier();
    if (world().is_root()) std::remove(path.c_str());
}

namespace {

/// mpi_sharing that kills its own process (SIGKILL, as `kill -9`) on one rank at one sum.
class dies_at final : public gradient_sharing {
public:
    dies_at(std::size_t rank, std::size_t sum) : inner_(world()), rank_(rank), at_(sum) {}
    std::size_t rank() const override { return inner_.rank(); }
    std::size_t size() const override { return inner_.size(); }
    void sum(std::span<float> v) override {
        if (inner_.rank() == rank_ && ++count_ == at_) raise(SIGKILL);
        inner_.sum(v);
    }
    void sum(std::span<double> v) override { inner_.sum(v); }

private:
    distributed::mpi_sharing inner_;
    std::size_t rank_, at_, count_ = 0;
};

}  // namespace

// Run in three phases by kill_and_resume.sh (not by default): reference, kill, resume.
TEST_CASE("kill -9 of one rank, then resume from the last checkpoint" * doctest::skip()) {
    const char* phase = std::getenv("ADVAUG_KILL_PHASE");
    const char* dir = std::getenv("ADVAUG_KILL_DIR");
    REQUIRE(phase);
    REQUIRE(dir);
    const std::string checkpoint = std::string(dir) + "/checkpoint.bin";
    const auto data = synthetic(72);
    auto o = distributed::data_parallel(world(), options(training_method::pgd, 3));
    mlp<float> net({12, 16, 3}, 5);
    sgd<float> opt;
    const std::string which = phase;
    if (which == "kill") {
        o.sharing(std::make_shared<dies_at>(world().size() - 1, 8));  // batch 3 of epoch 2
        if (world().is_root()) o.checkpoint(checkpoint, 2);
    }
    trainer tr(net, opt, o);
    if (which == "resume") tr.resume(checkpoint);
    tr.fit(data);
    if (world().is_root()) {
        std::ofstream out(std::string(dir) + "/" + which + ".params", std::ios::binary);
        const auto v = flat(net);
        out.write(reinterpret_cast<const char*>(v.data()),
                  static_cast<std::streamsize>(v.size() * sizeof(float)));
    }
}

TEST_CASE("synchronized batch norm: R ranks take the single-process step, statistics included") {
    // 20 steps as above (a last batch of 8 split 4 + 4 and 2 + 3 + 3); parameters and running
    // statistics within 1e-5 of one process's (measured: 1.5e-7; per rank 0.07 to 0.16).
    // Batch norm sits before the ReLU: after it, a feature that the ReLU silences for all but
    // a sample or two has a variance near 0, and dividing by sqrt(var + eps) amplifies the
    // rounding differences of a different summation order: to 8e-6 after 20 full batches, 2e-3
    // with the small last batch, though each step alone agrees to 1e-7.
    const auto data = synthetic(72);
    const auto images =
        dataset<float>(std::vector<float>(data.features().begin(), data.features().end()),
                       {1, 3, 4}, data.labels(), 3);
    const auto sync = distributed::batch_norm_statistics::synchronized;
    for (auto method : {training_method::plain, training_method::fgsm_rs, training_method::pgd}) {
        CAPTURE(to_string(method));
        auto o = options(method, 4);
        if (method != training_method::plain) o.attack_mode(mode::train);  // batch statistics
        SUBCASE("MLP, batch_norm1d") {
            const auto net = small_bn_mlp();
            const auto alone = trained_state(net, o, data);
            const auto shared =
                trained_state(net, distributed::data_parallel(world(), o, sync), data);
            CHECK(max_relative_difference(shared, alone) <= 1e-5);
            CHECK(same_on_every_rank(shared));
            CHECK(shared == trained_state(net, distributed::data_parallel(world(), o, sync), data));
            if (world().size() > 1) {  // per rank, the statistics are the shard's
                CHECK(max_relative_difference(
                          trained_state(net, distributed::data_parallel(world(), o), data), alone) >
                      1e-2);
            }
        }
        SUBCASE("CNN, batch_norm2d") {
            const auto alone = trained_state(small_cnn(), o, images);
            const auto shared =
                trained_state(small_cnn(), distributed::data_parallel(world(), o, sync), images);
            CHECK(max_relative_difference(shared, alone) <= 1e-5);
            CHECK(same_on_every_rank(shared));
        }
    }
}

TEST_CASE("the collective timeout is validated in its setter") {
    distributed::communicator comm;
    CHECK(comm.timeout() == 300);
    CHECK(comm.timeout(0).timeout() == 0);
    CHECK_THROWS_WITH_AS(comm.timeout(-1),
                         "distributed::communicator::timeout(): seconds must be finite and >= 0 "
                         "(0: no timeout), got -1",
                         std::invalid_argument);
    CHECK_THROWS_AS(comm.timeout(std::nan("")), std::invalid_argument);
    // with and without the timeout, a collective gives the same sum
    for (double t : {0.0, 5.0}) {
        comm.timeout(t);
        double v[2] = {1.0, static_cast<double>(comm.rank())};
        comm.all_reduce_sum(std::span<double>(v));
        CHECK(v[0] == static_cast<double>(comm.size()));
        CHECK(v[1] == static_cast<double>(comm.size() * (comm.size() - 1) / 2));
        comm.barrier();
    }
}

// Run by collective_timeout.sh (not by default): the last rank sleeps past a 1 s timeout before
// an all-reduce; the others must end the job, naming the collective, the rank and the wait.
TEST_CASE("a rank that hangs without dying ends the job at the timeout" * doctest::skip()) {
    distributed::communicator comm;
    comm.timeout(1);
    if (comm.rank() + 1 == comm.size()) std::this_thread::sleep_for(std::chrono::seconds(4));
    double v[1] = {1};
    comm.all_reduce_sum(std::span<double>(v));
}
