// Which evaluation corruptions (shifts/image_corruptions.hpp) a training perturbation family
// covers: the table of docs/shift_robustness.md, decided before any result was measured. A
// corruption is covered when some point of the family's budget produces the same kind of
// change; the report splits the mean corruption accuracy into covered and not covered with it,
// so that the not-covered part measures generalization.
//
//   model_evaluation m = evaluate_robustness(model, test, options, "affine+photometric");
//   m.covered_corruptions = covered_corruption_names({"affine", "photometric"});
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/shifts/image_corruptions.hpp"

namespace advaug {

/// The corruptions a training family covers, by the family's name as the family reports it
/// ("photometric", "affine", "displacement_field", "gaussian_blur", "linf_ball", "l2_ball").
/// throws: std::invalid_argument naming the function and the unknown name.
inline std::vector<corruption> corruptions_covered_by(std::string_view family) {
    using c = corruption;
    if (family == "photometric") return {c::brightness, c::contrast};
    if (family == "affine") return {c::rotate, c::scale, c::shear, c::translate};
    if (family == "displacement_field") return {};
    if (family == "gaussian_blur") return {c::motion_blur};
    if (family == "linf_ball" || family == "l2_ball") return {c::gaussian_noise, c::shot_noise};
    detail::invalid("corruptions_covered_by", "unknown training family '", std::string(family),
                    "'; known: photometric, affine, displacement_field, gaussian_blur, linf_ball, l2_ball");
}

/// The union of the families' covered corruptions, as names in enumeration order (the form
/// model_evaluation::covered_corruptions takes).
inline std::vector<std::string> covered_corruption_names(const std::vector<std::string>& families) {
    std::vector<corruption> all;
    for (const auto& f : families) {
        for (corruption k : corruptions_covered_by(f)) {
            if (std::find(all.begin(), all.end(), k) == all.end()) all.push_back(k);
        }
    }
    std::sort(all.begin(), all.end());
    std::vector<std::string> out;
    for (corruption k : all) out.emplace_back(to_string(k));
    return out;
}

}  // namespace advaug
