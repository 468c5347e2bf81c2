// The bundled convolutional network for 1x28x28 images (MNIST, Fashion-MNIST):
//
//   conv 1->32 3x3 pad 1, ReLU, max-pool 2, conv 32->64 3x3 pad 1, ReLU, max-pool 2,
//   flatten, dense 3136->128, ReLU, dense 128->10
//
// and a variant with batch norm after each convolution. A sequential<T, 4>, so it is the same
// network as the torch.nn.Sequential in examples/pytorch_interop.py, with the same
// parameter names ("0.weight", "3.weight", "7.weight", "9.weight" without batch norm).
#pragma once

#include <cstdint>

#include "advaug/detail/random.hpp"
#include "advaug/layers/activations.hpp"
#include "advaug/layers/batch_norm.hpp"
#include "advaug/layers/conv2d.hpp"
#include "advaug/layers/dense.hpp"
#include "advaug/layers/flatten.hpp"
#include "advaug/layers/pooling.hpp"
#include "advaug/models/sequential.hpp"

namespace advaug {

template <class T>
class cnn : public sequential<T, 4> {
public:
    /// `batch_norm` inserts batch_norm<T, 4> after each convolution.
    explicit cnn(std::uint64_t seed = 0, weight_init init = weight_init::he_normal, bool batch_norm = false)
        : sequential<T, 4>({1, 28, 28}), batch_norm_(batch_norm) {
        rng gen(seed);
        const auto conv = conv2d_options{}.padding(1).init(init);
        this->add(conv2d<T>(1, 32, 3, gen, conv));
        if (batch_norm) this->add(advaug::batch_norm<T, 4>(32));
        this->add(relu<T, 4>{});
        this->add(max_pool2d<T>(2));
        this->add(conv2d<T>(32, 64, 3, gen, conv));
        if (batch_norm) this->add(advaug::batch_norm<T, 4>(64));
        this->add(relu<T, 4>{});
        this->add(max_pool2d<T>(2));
        this->add(flatten<T>{});
        this->add(dense<T>(64 * 7 * 7, 128, gen, init));
        this->add(relu<T, 2>{});
        this->add(dense<T>(128, 10, gen, init));
    }

    bool has_batch_norm() const { return batch_norm_; }

private:
    bool batch_norm_;
};

}  // namespace advaug
