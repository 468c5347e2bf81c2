// The adversarial training methods and their names on a command line.
#pragma once

#include <string>
#include <string_view>

#include "advaug/detail/error.hpp"

namespace advaug {

/// How the adversarial half of each batch is made. Every method trains on
///   (1 - alpha) * CE(x) + alpha * CE(x_adv).
enum class training_method {
    plain,    ///< no attack; alpha must be 0 (the baseline)
    fgsm,     ///< the seed's recipe: x_adv = clip(x + eps * sign(grad)), default alpha 0.5
    fgsm_rs,  ///< FGSM with random start (Wong, Rice, Kolter 2020): start ~ U(-eps, eps),
              ///< step 1.25 eps, projected back to the eps-ball; default alpha 1
    n_fgsm,   ///< N-FGSM (de Jorge et al. 2022): noise ~ U(-2 eps, 2 eps), step eps, no
              ///< projection to the eps-ball (only to the domain); default alpha 1
    pgd,      ///< PGD adversarial training (Madry et al. 2018): k steps from a random start;
              ///< default alpha 1
    family,   ///< the worst case of a perturbation family (train_options::family): x_adv is
              ///< worst_case()'s result in the family's budget; default alpha 0.5 (the seed's)
    augmix,   ///< consistency training (Hendrycks et al. 2020): CE(x) + lambda JS(p(x), p(v1),
              ///< p(v2)), v1 and v2 random draws of train_options::consistency's mixture; no alpha
    augmax,   ///< as augmix, v1 the worst mixture found by the consistency search (Wang et al.
              ///< 2021), v2 a random draw; no alpha
};

/// Whether m trains on CE(x) + lambda JS over views (augmix, augmax) rather than the alpha mix.
inline constexpr bool is_consistency(training_method m) {
    return m == training_method::augmix || m == training_method::augmax;
}

inline std::string_view to_string(training_method m) {
    switch (m) {
        case training_method::plain: return "plain";
        case training_method::fgsm: return "fgsm";
        case training_method::fgsm_rs: return "fgsm-rs";
        case training_method::n_fgsm: return "n-fgsm";
        case training_method::pgd: return "pgd";
        case training_method::family: return "family";
        case training_method::augmix: return "augmix";
        case training_method::augmax: return "augmax";
    }
    return "?";
}

/// "plain", "fgsm", "fgsm-rs", "n-fgsm", "pgd", "family", "augmix" or "augmax"; anything else
/// is an error listing them.
inline training_method parse_training_method(std::string_view name) {
    for (auto m : {training_method::plain, training_method::fgsm, training_method::fgsm_rs,
                   training_method::n_fgsm, training_method::pgd, training_method::family,
                   training_method::augmix, training_method::augmax}) {
        if (name == to_string(m)) return m;
    }
    detail::invalid("parse_training_method", "unknown method '", std::string(name),
                    "'; expected one of: plain, fgsm, fgsm-rs, n-fgsm, pgd, family, augmix, augmax");
}

/// alpha when the user does not set one: 0 for plain (and augmix and augmax, which do not use
/// it), the seed's 0.5 for fgsm and family, else 1.
inline double default_alpha(training_method m) {
    switch (m) {
        case training_method::plain:
        case training_method::augmix:
        case training_method::augmax: return 0.0;
        case training_method::fgsm:
        case training_method::family: return 0.5;
        default: return 1.0;
    }
}

}  // namespace advaug
