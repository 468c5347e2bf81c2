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
#include "advaug/perturbations/natural.hpp"
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

/// The corruptions one named image family part covers (a mixture's operations, say): rotation,
/// translation, scale and shear their namesakes, brightness and contrast theirs, blur
/// motion_blur; gamma and displacement none (a power law and a smooth local flow are neither).
inline std::vector<corruption> corruptions_covered_by(natural_family part) {
    using c = corruption;
    switch (part) {
        case natural_family::rotation: return {c::rotate};
        case natural_family::translation: return {c::translate};
        case natural_family::scale: return {c::scale};
        case natural_family::shear: return {c::shear};
        case natural_family::brightness: return {c::brightness};
        case natural_family::contrast: return {c::contrast};
        case natural_family::blur: return {c::motion_blur};
        case natural_family::gamma:
        case natural_family::displacement: return {};
    }
    detail::invalid("corruptions_covered_by", "part is not a natural_family, got value ", static_cast<int>(part));
}

/// The union of the families' and the named parts' covered corruptions, as names in
/// enumeration order (the form model_evaluation::covered_corruptions takes).
inline std::vector<std::string> covered_corruption_names(const std::vector<std::string>& families,
                                                         const std::vector<natural_family>& parts = {}) {
    std::vector<corruption> all;
    auto add = [&](const std::vector<corruption>& covered) {
        for (corruption k : covered) {
            if (std::find(all.begin(), all.end(), k) == all.end()) all.push_back(k);
        }
    };
    for (const auto& f : families) add(corruptions_covered_by(f));
    for (natural_family p : parts) add(corruptions_covered_by(p));
    std::sort(all.begin(), all.end());
    std::vector<std::string> out;
    for (corruption k : all) out.emplace_back(to_string(k));
    return out;
}

}  // namespace advaug
