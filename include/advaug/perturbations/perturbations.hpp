// Worst-case natural perturbations: the family contract, the bundled families, their
// finite-difference check and the worst-case search. docs/perturbations.md explains them.
#pragma once

#include "advaug/perturbations/additive.hpp"
#include "advaug/perturbations/any_family.hpp"
#include "advaug/perturbations/augment_and_mix.hpp"
#include "advaug/perturbations/blur.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/check.hpp"
#include "advaug/perturbations/compose.hpp"
#include "advaug/perturbations/family.hpp"
#include "advaug/perturbations/image_shape.hpp"
#include "advaug/perturbations/natural.hpp"
#include "advaug/perturbations/perturb.hpp"
#include "advaug/perturbations/photometric.hpp"
#include "advaug/perturbations/search.hpp"
#include "advaug/perturbations/search_options.hpp"
#include "advaug/perturbations/spatial.hpp"
#include "advaug/perturbations/static_checks.hpp"
#include "advaug/perturbations/tabular.hpp"
