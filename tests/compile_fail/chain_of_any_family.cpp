// A chain's kind is a compile-time constant, so it takes no any_family member (whose kind is
// known at run time only): one error saying to put the chain in the any_family instead.
// expect-error: chain<...> takes no any_family member
#include <advaug/perturbations/any_family.hpp>
#include <advaug/perturbations/compose.hpp>
#include <advaug/perturbations/tabular.hpp>

int main() {
    const advaug::any_family<double> held(advaug::quantize<double>(3, {advaug::interval{0.0, 0.1}}));
    const advaug::chain<advaug::any_family<double>> c(held);
    return static_cast<int>(c.num_params());
}
