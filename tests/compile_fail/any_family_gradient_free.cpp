// any_family holds continuous families only: a gradient-free one is one error naming why.
// expect-error: any_family holds continuous families only
#include <advaug/perturbations/any_family.hpp>
#include <advaug/perturbations/tabular.hpp>

int main() {
    const advaug::any_family<double> held(advaug::quantize<double>(3, {advaug::interval{0.0, 0.1}}));
    return static_cast<int>(held.num_params());
}
