// distributed_fashion_mnist.cpp: adversarial training of one model by several processes.
//
// Every process (rank) of an MPI job runs this same program on the same data. The trainer is
// the ordinary advaug::trainer; distributed::data_parallel() only adds to its options that
//   - each global batch of --batch samples is split into one contiguous shard per rank (the
//     shuffle is the same on every rank: it comes from the run's seed),
//   - each rank attacks its own shard and computes the gradient of its mean loss,
//   - the gradients are summed over the ranks (one MPI_Allreduce of a flat buffer), weighted
//     so that the result is the gradient of the mean loss over the whole global batch,
//   - rank 0 alone prints, logs and writes the checkpoint.
// So R ranks with a global batch B take the same steps as one process with batch B, up to the
// order of float additions (docs/distributed.md says what is exact and what is not).
//
//   mpirun -np 2 ./distributed_fashion_mnist --method fgsm-rs --epochs 1
//   mpirun -np 2 ./distributed_fashion_mnist --bench 50 --model cnn   # time the all-reduce
//   mpirun -np 2 ./distributed_fashion_mnist --model cnn --batch-norm sync --timeout 60
//
// Options: --model mlp|cnn, --method plain|fgsm|fgsm-rs|n-fgsm|pgd, --eps E (raw units of the
// [0, 1] pixels), --epochs N, --batch B (global), --train-samples N, --test-samples N,
// --threads T (advaug threads per rank), --checkpoint PATH, --resume, --bench N,
// --batch-norm none|per-rank|sync (the CNN's; none by default), --timeout S (seconds a rank waits
// in one collective before it ends the job; 0 = forever; default 300).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "advaug/advaug.hpp"
#include "advaug/distributed/data_parallel.hpp"
#include "advaug/distributed/evaluation.hpp"

namespace {

struct settings {
    std::string model = "mlp", method = "fgsm-rs", checkpoint, batch_norm = "none";
    double eps = 0.1, timeout = 300;
    std::size_t epochs = 1, batch = 128, train_samples = 10000, test_samples = 2000, threads = 1,
                bench = 0;
    bool resume = false;
};

settings parse(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--model")
            s.model = value();
        else if (a == "--method")
            s.method = value();
        else if (a == "--eps")
            s.eps = std::stod(value());
        else if (a == "--epochs")
            s.epochs = std::stoul(value());
        else if (a == "--batch")
            s.batch = std::stoul(value());
        else if (a == "--train-samples")
            s.train_samples = std::stoul(value());
        else if (a == "--test-samples")
            s.test_samples = std::stoul(value());
        else if (a == "--threads")
            s.threads = std::stoul(value());
        else if (a == "--checkpoint")
            s.checkpoint = value();
        else if (a == "--resume")
            s.resume = true;
        else if (a == "--bench")
            s.bench = std::stoul(value());
        else if (a == "--batch-norm")
            s.batch_norm = value();
        else if (a == "--timeout")
            s.timeout = std::stod(value());
        else
            throw std::invalid_argument("unknown option '" + a +
                                        "' (see the comment at the top of the source)");
    }
    if (s.model != "mlp" && s.model != "cnn")
        throw std::invalid_argument("--model must be mlp or cnn, got " + s.model);
    if (s.batch_norm != "none" && s.batch_norm != "per-rank" && s.batch_norm != "sync")
        throw std::invalid_argument("--batch-norm must be none, per-rank or sync, got " +
                                    s.batch_norm);
    if (s.batch_norm != "none" && s.model != "cnn")
        throw std::invalid_argument("--batch-norm needs --model cnn (the MLP has no batch norm)");
    return s;
}

using byte_dataset = advaug::dataset<std::uint8_t>;

byte_dataset first_images(const advaug::tensor<std::uint8_t, 3>& images,
                          const advaug::label_vector& labels, std::size_t count, bool nchw) {
    count = std::min(count, images.shape(0));
    const advaug::tensor<std::uint8_t, 3> head =
        xt::view(images, xt::range(0, count), xt::all(), xt::all());
    const advaug::label_vector head_labels = xt::view(labels, xt::range(0, count));
    return byte_dataset::from_images(head, head_labels, 10, nchw);
}

double seconds_since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The cost of the gradient all-reduce alone: `steps` MPI_Allreduce calls of the model's
// parameter count, as the trainer makes once per step. Printed by rank 0.
template <class Model>
void bench_all_reduce(const advaug::distributed::communicator& comm, Model& model,
                      std::size_t steps) {
    std::size_t count = 0;
    for (const auto& p : model.parameters()) count += p.grad.size();
    std::vector<float> buffer(count, 1.0f);
    comm.all_reduce_sum(std::span<float>(buffer));  // warm-up: connections are made lazily
    comm.barrier();
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < steps; ++i) comm.all_reduce_sum(std::span<float>(buffer));
    const double per_step = seconds_since(start) / static_cast<double>(steps);
    if (comm.is_root()) {
        std::printf(
            "all-reduce of %zu floats (%.2f MB) over %zu ranks: %.3f ms per step (%zu steps)\n",
            count, count * 4 / 1e6, comm.size(), per_step * 1e3, steps);
    }
}

template <class Model>
int run(const settings& s, const advaug::distributed::communicator& comm, Model model) {
    const bool root = comm.is_root();
    // 1. The data: every rank loads the same files; the trainer picks each rank's shard.
    const auto data = advaug::load_fashion_mnist(advaug::default_fashion_mnist_dir());
    const bool nchw = Model::input_rank == 4;
    const auto train = first_images(data.train_images, data.train_labels, s.train_samples, nchw);
    const auto test = first_images(data.test_images, data.test_labels, s.test_samples, nchw);
    if (s.bench > 0) {
        bench_all_reduce(comm, model, s.bench);
        return 0;
    }
    if (root) {
        std::printf(
            "%zu ranks x %zu threads, %s, %s at eps %g, global batch %zu, %zu training images\n",
            comm.size(), s.threads, s.model.c_str(), s.method.c_str(), s.eps, s.batch,
            train.size());
    }

    // 2. The options are those of a single-process run; data_parallel() adds the sharing.
    const auto method = advaug::parse_training_method(s.method);
    auto options = advaug::train_options{}
                       .method(method)
                       .learning_rate(advaug::lr_schedule::constant(0.05))
                       .batch_size(s.batch)
                       .epochs(s.epochs)
                       .seed(1)
                       .log_every(20)
                       .progress(advaug::progress_style::lines);
    if (method != advaug::training_method::plain) options.epsilon(s.eps);
    if (!s.checkpoint.empty()) options.checkpoint(s.checkpoint, 20);
    advaug::sgd<float> optimizer(advaug::sgd_options{}.momentum(0.9));
    // Batch norm over each rank's shard, or synchronized: statistics of the whole global batch.
    const auto bn = s.batch_norm == "sync"
                        ? advaug::distributed::batch_norm_statistics::synchronized
                        : advaug::distributed::batch_norm_statistics::per_rank;
    advaug::trainer trainer(model, optimizer,
                            advaug::distributed::data_parallel(comm, options, bn));
    if (s.resume) trainer.resume(s.checkpoint);  // every rank reads rank 0's file

    // 3. Train: the same call on every rank.
    const auto start = std::chrono::steady_clock::now();
    const auto result = trainer.fit(train);
    const double seconds = seconds_since(start);

    // 4. Evaluate: each rank classifies its part of the test set; the counts are summed.
    const double clean = advaug::distributed::accuracy(comm, model, test);
    if (root) {
        const double rate = result.epochs.empty() ? 0.0 : result.epochs.back().samples_per_second;
        std::printf(
            "trained in %.1f s (%.0f samples/s in the last epoch); clean test accuracy %.2f%%\n",
            seconds, rate, 100 * clean);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    // MPI first: it may remove its own arguments from argv.
    advaug::distributed::environment env(argc, argv);
    advaug::distributed::communicator comm;
    try {
        const settings s = parse(argc, argv);
        advaug::set_num_threads(s.threads);
        // A rank that waits longer than this in one collective (another rank hangs) ends the job.
        comm.timeout(s.timeout);
        if (s.model == "mlp") return run(s, comm, advaug::mlp<float>({784, 256, 256, 10}, 1));
        return run(s, comm,
                   advaug::cnn<float>(1, advaug::weight_init::he_normal, s.batch_norm != "none"));
    } catch (const std::exception& e) {
        // An error on one rank would leave the others waiting in a collective: end the job.
        std::fprintf(stderr, "distributed_fashion_mnist: rank %zu: %s\n", comm.rank(), e.what());
        comm.abort(1);
    }
}
