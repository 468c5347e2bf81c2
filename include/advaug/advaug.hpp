// advaug: adversarial data augmentation for any model that satisfies the model contract.
//
// The umbrella header of the CPU library. The optional CUDA backend (advaug/cuda/) is never
// included from here.
#pragma once

// The model contract
#include "advaug/model/classifier.hpp"
#include "advaug/model/mode.hpp"
#include "advaug/model/parameter.hpp"
#include "advaug/model/static_checks.hpp"

// Losses and the input domain
#include "advaug/domain/input_domain.hpp"
#include "advaug/loss/cross_entropy.hpp"
#include "advaug/loss/jensen_shannon.hpp"

// Attacks
#include "advaug/attacks/apgd.hpp"
#include "advaug/attacks/autoattack.hpp"
#include "advaug/attacks/fab.hpp"
#include "advaug/attacks/fgm.hpp"
#include "advaug/attacks/fgsm.hpp"
#include "advaug/attacks/options.hpp"
#include "advaug/attacks/pgd.hpp"
#include "advaug/attacks/square.hpp"

// Layers and bundled models
#include "advaug/layers/activations.hpp"
#include "advaug/layers/batch_norm.hpp"
#include "advaug/layers/conv2d.hpp"
#include "advaug/layers/dense.hpp"
#include "advaug/layers/dropout.hpp"
#include "advaug/layers/flatten.hpp"
#include "advaug/layers/layer.hpp"
#include "advaug/layers/parameterless.hpp"
#include "advaug/layers/pooling.hpp"
#include "advaug/layers/static_checks.hpp"
#include "advaug/models/cnn.hpp"
#include "advaug/models/mlp.hpp"
#include "advaug/models/sequential.hpp"

// Training
#include "advaug/optim/adam.hpp"
#include "advaug/optim/optimizer.hpp"
#include "advaug/optim/sgd.hpp"
#include "advaug/training/method.hpp"
#include "advaug/training/schedule.hpp"
#include "advaug/training/train_options.hpp"
#include "advaug/training/feature_ada.hpp"
#include "advaug/training/trainer.hpp"

// Data, evaluation, files
#include "advaug/data/csv.hpp"
#include "advaug/data/dataset.hpp"
#include "advaug/data/idx.hpp"
#include "advaug/evaluation/accuracy.hpp"
#include "advaug/evaluation/coverage.hpp"
#include "advaug/evaluation/results.hpp"
#include "advaug/evaluation/robustness.hpp"
#include "advaug/evaluation/worst_case.hpp"
#include "advaug/io/atomic_file.hpp"
#include "advaug/io/binary.hpp"
#include "advaug/io/model_file.hpp"
#include "advaug/io/npy.hpp"
#include "advaug/io/npz.hpp"

// Reports (JSON, CSV, SVG charts, PNG grids, Markdown)
#include "advaug/report/report.hpp"

// Distribution shifts
#include "advaug/shifts/image_corruptions.hpp"
#include "advaug/shifts/tabular_shifts.hpp"
#include "advaug/perturbations/perturbations.hpp"  // worst-case natural perturbations

// Tools
#include "advaug/backend/info.hpp"  // which kernel library runs the products
#include "advaug/gradcheck/gradient_check.hpp"

namespace advaug {
inline constexpr const char* version = "0.1.0";
}
