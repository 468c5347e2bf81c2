// The trainers whose checkpoints fuzz_checkpoint reads, shared with make_seeds so that the
// seed checkpoints match them in architecture, method, seed and batch size (else resume()
// refuses them before reaching the interesting parts).
#pragma once

#include <advaug/data/dataset.hpp>
#include <advaug/models/mlp.hpp>
#include <advaug/optim/adam.hpp>
#include <advaug/optim/optimizer.hpp>
#include <advaug/optim/sgd.hpp>
#include <advaug/training/trainer.hpp>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace advaug_fuzz {

inline advaug::train_options checkpoint_options() {
    static std::ostringstream sink;
    return advaug::train_options{}
        .method(advaug::training_method::fgsm)
        .epsilon(0.1)
        .learning_rate(advaug::lr_schedule::constant(0.05))
        .batch_size(4)
        .epochs(2)
        .seed(5)
        .progress(advaug::progress_style::none)
        .output(sink);
}

inline advaug::mlp<float> checkpoint_model() { return advaug::mlp<float>({3, 4, 2}, 1); }

inline advaug::adam<float> checkpoint_adam() { return advaug::adam<float>{}; }

inline advaug::sgd<float> checkpoint_sgd() {
    return advaug::sgd<float>(advaug::sgd_options{}.momentum(0.9));
}

/// 8 samples of 3 features, 2 classes: two batches per epoch.
inline advaug::dataset<float> checkpoint_data() {
    std::vector<float> x = {0.1f, 0.2f, 0.3f, 0.9f, 0.8f, 0.7f, 0.2f, 0.1f, 0.3f, 0.8f, 0.9f, 0.6f,
                            0.0f, 0.3f, 0.2f, 0.7f, 0.7f, 0.9f, 0.3f, 0.2f, 0.1f, 1.0f, 0.8f, 0.8f};
    auto y = advaug::label_vector::from_shape({8});
    for (std::size_t i = 0; i < 8; ++i) y(i) = static_cast<std::int64_t>(i % 2);
    return advaug::dataset<float>(std::move(x), {3}, std::move(y), 2);
}

}  // namespace advaug_fuzz
