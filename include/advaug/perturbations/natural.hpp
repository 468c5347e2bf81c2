// The natural image families by name, each built from one number, its budget: what
// evaluate_worst_case() (evaluation/worst_case.hpp), advaug-eval --families and
// examples/perturbation_sheet.cpp share, so "rotation within 15 degrees" means one family
// everywhere.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "advaug/detail/error.hpp"
#include "advaug/domain/input_domain.hpp"
#include "advaug/perturbations/any_family.hpp"
#include "advaug/perturbations/blur.hpp"
#include "advaug/perturbations/budget.hpp"
#include "advaug/perturbations/image_shape.hpp"
#include "advaug/perturbations/photometric.hpp"
#include "advaug/perturbations/spatial.hpp"

namespace advaug {

/// The image families known by name, each built from a budget b:
///   rotation      affine, rotation within +-b degrees
///   translation   affine, shift within +-b pixels in x and in y
///   scale         affine, relative scale within +-b in x and in y (0.1: 90% to 110%)
///   shear         affine, shear within +-b
///   brightness    photometric, offset within +-b of the domain's range
///   contrast      photometric, contrast gain within +-b (0.3: 0.7x to 1.3x about the mean)
///   gamma         photometric, log of the gamma exponent within +-b
///   blur          gaussian_blur, sigma within [0, b] pixels
///   displacement  displacement_field on a 4 x 4 control grid, each within +-b pixels (stAdv)
enum class natural_family { rotation, translation, scale, shear, brightness, contrast, gamma, blur, displacement };

inline constexpr std::string_view to_string(natural_family f) {
    switch (f) {
        case natural_family::rotation: return "rotation";
        case natural_family::translation: return "translation";
        case natural_family::scale: return "scale";
        case natural_family::shear: return "shear";
        case natural_family::brightness: return "brightness";
        case natural_family::contrast: return "contrast";
        case natural_family::gamma: return "gamma";
        case natural_family::blur: return "blur";
        case natural_family::displacement: return "displacement";
    }
    return "?";
}

/// The unit of a family's budget, as the report prints it.
inline constexpr std::string_view budget_unit(natural_family f) {
    switch (f) {
        case natural_family::rotation: return "degrees";
        case natural_family::translation: return "pixels";
        case natural_family::scale: return "relative scale";
        case natural_family::shear: return "shear";
        case natural_family::brightness: return "of the range";
        case natural_family::contrast: return "relative gain";
        case natural_family::gamma: return "log gamma";
        case natural_family::blur: return "sigma, pixels";
        case natural_family::displacement: return "pixels";
    }
    return "?";
}

inline std::vector<natural_family> all_natural_families() {
    return {natural_family::rotation,   natural_family::translation, natural_family::scale,
            natural_family::shear,      natural_family::brightness,  natural_family::contrast,
            natural_family::gamma,      natural_family::blur,        natural_family::displacement};
}

/// The family named `name` ("rotation", ...). throws: std::invalid_argument naming `function`,
/// the name and the known ones.
inline natural_family parse_natural_family(const char* function, std::string_view name) {
    std::string known;
    for (natural_family f : all_natural_families()) {
        if (to_string(f) == name) return f;
        known += (known.empty() ? "" : ", ") + std::string(to_string(f));
    }
    detail::invalid(function, "unknown perturbation family '", std::string(name), "'; expected one of: ", known);
}

/// Calls fn(make) with make(b) building `family` with budget b > 0 on images of `shape` in
/// `domain`, and returns what fn returns. make's result type depends on the family, which is
/// why the family is handed to fn rather than returned.
/// throws: std::invalid_argument for a value outside the enumeration; make(b) throws the
///         family's own error for a bad budget.
template <class T, class Fn>
decltype(auto) with_natural_family(natural_family family, image_shape shape, const input_domain& domain, Fn&& fn) {
    switch (family) {
        case natural_family::rotation:
            return fn([=](double b) { return affine<T>(shape, {.rotation = symmetric(b)}, padding::zeros, domain); });
        case natural_family::translation:
            return fn([=](double b) {
                return affine<T>(shape, {.translate_x = symmetric(b), .translate_y = symmetric(b)}, padding::zeros, domain);
            });
        case natural_family::scale:
            return fn([=](double b) {
                return affine<T>(shape, {.scale_x = symmetric(b), .scale_y = symmetric(b)}, padding::zeros, domain);
            });
        case natural_family::shear:
            return fn([=](double b) { return affine<T>(shape, {.shear = symmetric(b)}, padding::zeros, domain); });
        case natural_family::brightness:
            return fn([=](double b) { return photometric<T>(shape, {.brightness = symmetric(b)}, domain); });
        case natural_family::contrast:
            return fn([=](double b) { return photometric<T>(shape, {.contrast = symmetric(b)}, domain); });
        case natural_family::gamma:
            return fn([=](double b) { return photometric<T>(shape, {.log_gamma = symmetric(b)}, domain); });
        case natural_family::blur:
            return fn([=](double b) { return gaussian_blur<T>(shape, interval{0, b}, domain); });
        case natural_family::displacement:
            return fn([=](double b) {
                return displacement_field<T>(shape, {.grid = 4, .max_displacement = b}, padding::zeros, domain);
            });
    }
    detail::invalid("with_natural_family", "family is not a natural_family, got value ", static_cast<int>(family));
}

/// One family per (name, budget) pair, held as any_family<T>: an operation list for
/// augment_and_mix (perturbations/augment_and_mix.hpp), say AugMix's.
/// throws: std::invalid_argument from the family named, for a bad budget.
template <class T>
std::vector<any_family<T>> natural_families(const std::vector<std::pair<natural_family, double>>& list,
                                            image_shape shape, const input_domain& domain) {
    std::vector<any_family<T>> out;
    for (const auto& entry : list) {
        // Not a structured binding: clang before 16 cannot capture one in a lambda.
        const double budget = entry.second;
        out.push_back(with_natural_family<T>(
            entry.first, shape, domain, [&](auto make) { return any_family<T>(make(budget)); }));
    }
    return out;
}

}  // namespace advaug
