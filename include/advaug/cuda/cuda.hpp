// The optional CUDA backend: device tensors, device models, their optimizer, and the device
// versions of the attacks' customization points. Include this (from a .cu file compiled with
// nvcc, linked to advaug::cuda) instead of, or next to, advaug/advaug.hpp, which never
// includes it. See docs/cuda.md.
//
//   advaug::cuda::mlp<float> gpu(host_model);                 // same weights, on the GPU
//   auto x = advaug::cuda::to_device(batch);
//   auto y = advaug::cuda::to_device(labels);
//   auto adv = advaug::fgsm(gpu, x, y, advaug::fgsm_options{}.epsilon(0.1));
#pragma once

#include "advaug/attacks/fgm.hpp"
#include "advaug/attacks/fgsm.hpp"
#include "advaug/attacks/pgd.hpp"
#include "advaug/cuda/attack_ops.hpp"
#include "advaug/cuda/cnn.hpp"
#include "advaug/cuda/host_model.hpp"
#include "advaug/cuda/loss.hpp"
#include "advaug/cuda/mlp.hpp"
#include "advaug/cuda/runtime.hpp"
#include "advaug/cuda/sgd.hpp"
#include "advaug/cuda/tensor.hpp"
