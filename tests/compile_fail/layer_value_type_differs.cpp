// A double layer added to a float model: one error, not a cascade from the slot's tensor types.
// expect-error: the layer's value_type differs from the model's
#include <advaug/layers/activations.hpp>
#include <advaug/models/sequential.hpp>

int main() {
    auto net = advaug::sequential<float, 2>({4}).add(advaug::relu<double, 2>{});
    return static_cast<int>(net.size());
}
